/** `GET /pools` and the pool metric families of `/metrics`, with and without pools. */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createAdminHandler } from "../../src/admin/admin_handler.ts";
import { createWorkersAdminHandler } from "../../src/admin/workers_admin_handler.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import { ProxyMetrics } from "../../src/metrics/proxy_metrics.ts";
import { PoolRegistry } from "../../src/pool/pool_registry.ts";
import { type FakeUpstream, startFakeUpstream, stayQuiet } from "../support/fake_upstream.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { FakeFactory, type FakeServer, settingsOf } from "../pool/fakes.ts";

const POOL_FAMILIES = [
  "pgrelay_pool_clients gauge",
  "pgrelay_pool_servers gauge",
  "pgrelay_pool_wait_seconds histogram",
  "pgrelay_pool_pinned_total counter",
  "pgrelay_pool_prepared_total counter",
  "pgrelay_pool_server_logins_total counter",
];

describe("admin: /pools and the pool metrics", () => {
  let upstream: FakeUpstream;
  let proxy: Proxy;

  before(async () => {
    upstream = await startFakeUpstream(stayQuiet);
    proxy = await startTestProxy(upstream);
  });
  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  const get = async (handler: (request: Request) => Promise<Response>, path: string) => {
    const response = await handler(new Request(`http://admin${path}`));
    return {
      status: response.status,
      type: response.headers.get("content-type"),
      body: await response.text(),
    };
  };

  it("without pooling, /pools is an empty list and /metrics still has every pool family", async () => {
    const metrics = new ProxyMetrics();
    const handler = createAdminHandler({ proxy, metrics });
    const pools = await get(handler, "/pools");
    assert.equal(pools.status, 200);
    assert.equal(pools.type, "application/json");
    assert.deepEqual(JSON.parse(pools.body), { pools: [] });
    const text = (await get(handler, "/metrics")).body;
    for (const family of POOL_FAMILIES) assert.match(text, new RegExp(`^# TYPE ${family}$`, "m"), family);
    assert.match(text, /^pgrelay_pool_pinned_total\{reason="with_hold_cursor"\} 0$/m);
    assert.match(text, /^pgrelay_pool_prepared_total\{result="eviction"\} 0$/m);
    assert.doesNotMatch(text, /^pgrelay_pool_clients\{/m, "no pool, no series");
  });

  it("with pools, /pools lists the registry's snapshot and /metrics their gauges, waits and logins", async () => {
    const metrics = new ProxyMetrics();
    const registry = new PoolRegistry<FakeServer>({
      factory: () => new FakeFactory(),
      metrics: metrics.pools,
    });
    const pool = registry.pool(
      { route: "app", cluster: "main", host: "db1:5432", database: "appdb", user: "alice" },
      settingsOf({ size: 2 }),
    );
    const held = await pool.lease();
    const idle = await pool.lease();
    pool.release(idle, { reusable: true });
    metrics.pools.prepared("hit");
    const handler = createAdminHandler({ proxy, metrics, pools: registry });
    const body = JSON.parse((await get(handler, "/pools")).body) as { pools: Record<string, unknown>[] };
    assert.equal(body.pools.length, 1);
    assert.deepEqual(
      [
        body.pools[0]!.route,
        body.pools[0]!.user,
        body.pools[0]!.mode,
        body.pools[0]!.servers_active,
        body.pools[0]!.servers_idle,
      ],
      ["app", "alice", "transaction", 1, 1],
    );
    const text = (await get(handler, "/metrics")).body;
    const label = 'pool="app:alice@db1:5432/appdb"';
    assert.match(text, new RegExp(`^pgrelay_pool_clients\\{${label},state="active"\\} 1$`, "m"));
    assert.match(text, new RegExp(`^pgrelay_pool_servers\\{${label},state="idle"\\} 1$`, "m"));
    assert.match(text, new RegExp(`^pgrelay_pool_servers\\{${label},state="login"\\} 0$`, "m"));
    assert.match(text, new RegExp(`^pgrelay_pool_server_logins_total\\{${label},result="ok"\\} 2$`, "m"));
    assert.match(text, new RegExp(`^pgrelay_pool_wait_seconds_count\\{${label}\\} 2$`, "m"));
    assert.match(text, new RegExp(`^pgrelay_pool_wait_seconds_bucket\\{${label},le="\\+Inf"\\} 2$`, "m"));
    assert.match(text, /^pgrelay_pool_prepared_total\{result="hit"\} 1$/m);
    pool.release(held, { reusable: false });
    registry.closeAll();
  });

  it("under --workers, /pools joins every worker's pools, each with its worker", async () => {
    const servers = [
      await workerAdmin({ pools: [{ route: "app", user: "a" }] }),
      await workerAdmin({ pools: [{ route: "app", user: "b" }, { route: "app", user: "c" }] }),
    ];
    try {
      const handler = createWorkersAdminHandler(() =>
        servers.map((server, i) => ({ id: i + 1, admin: server.address, alive: true }))
      );
      const body = JSON.parse((await get(handler, "/pools")).body) as {
        pools: { user: string; worker: number }[];
      };
      assert.deepEqual(body.pools.map((pool) => `${pool.user}:${pool.worker}`), ["a:1", "b:2", "c:2"]);
    } finally {
      await Promise.all(servers.map((server) => server.close()));
    }
  });
});

/** A worker's own admin endpoint, answering every request with one JSON body (node:http runs on both runtimes). */
async function workerAdmin(body: unknown) {
  const server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: { hostname: "127.0.0.1", port },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
