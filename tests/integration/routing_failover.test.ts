/**
 * Routing and failover against a real primary and streaming standby (issue 10): routes by application_name
 * to `standby` and `primary`, connect retry past a host that refuses, a client held while no host is
 * eligible and then refused with 57P03, a session on a host that stops answering (SIGSTOP) ended with
 * 08006 once health checks mark it down, a host whose role changed since its last check answered with
 * 57P03, and `primary` following a promotion. pgrelay runs as a process with a config file.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { makeTestPki } from "../support/certs.ts";
import { runPsql } from "../support/clients.ts";
import { freePort } from "../support/free_port.ts";
import { type PgrelayProcess, runPgrelay, spawnPgrelay } from "../support/pgrelay.ts";
import { type ReplicatedPair, startReplicatedPair } from "../support/replication.ts";
import { sleep, waitFor } from "../support/wait.ts";

interface Reached {
  port: number;
  inRecovery: boolean;
}

describe("routing and failover with a primary and a standby", () => {
  let pair: ReplicatedPair;
  let dir = "";
  let relay: PgrelayProcess;
  /** Health checked once at start only: its view of roles goes stale on promotion. */
  let stale: PgrelayProcess;
  let closedPort = 0;

  const client = (proxy: PgrelayProcess, applicationName: string) =>
    new pg.Client({
      host: proxy.address.hostname,
      port: proxy.address.port,
      ...pair.primary.users.superuser,
      database: "postgres",
      application_name: applicationName,
      connectionTimeoutMillis: 30_000,
    });

  /** Connects through pgrelay and reports which server answered and whether it is in recovery. */
  const reach = async (proxy: PgrelayProcess, applicationName: string): Promise<Reached> => {
    const c = client(proxy, applicationName);
    c.on("error", () => {});
    await c.connect();
    try {
      const result = await c.query<{ port: number; r: boolean }>(
        "SELECT inet_server_port() AS port, pg_is_in_recovery() AS r",
      );
      return { port: result.rows[0]!.port, inRecovery: result.rows[0]!.r };
    } finally {
      await c.end().catch(() => {});
    }
  };

  /** The SQLSTATE the session ends with: from connect, a query, or an error on an idle connection. */
  const endingCode = (c: pg.Client, ms: number) =>
    new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve("(none within the wait)"), ms);
      c.on("error", (error: Error & { code?: string }) => {
        clearTimeout(timer);
        resolve(error.code);
      });
    });

  const config = (interval: string) => `
log_level: debug
auth: { file: ${JSON.stringify(join(dir, "userlist.txt"))} }
routing: { hold_timeout: 3s }
clusters:
  main:
    hosts: ["127.0.0.1:${pair.primary.port}", "127.0.0.1:${pair.standby.port}"]
    health: { interval: ${interval}, timeout: 2s, user: postgres, database: postgres }
  retry:
    hosts: ["127.0.0.1:${closedPort}", "127.0.0.1:${pair.primary.port}"]
  dead:
    hosts: ["127.0.0.1:${closedPort}"]
    health: { interval: 300ms, timeout: 2s, user: postgres }
routes:
  - name: reports
    match: { application_name: "report*" }
    cluster: main
    target: standby
  - name: retry
    match: { application_name: retry }
    cluster: retry
    target: any
  - name: dead
    match: { application_name: dead }
    cluster: dead
    target: primary
  - name: default
    cluster: main
    target: primary
`;

  before(async () => {
    pair = await startReplicatedPair();
    dir = await mkdtemp(join(tmpdir(), "pgrelay-routing-"));
    closedPort = await freePort();
    const { user, password } = pair.primary.users.superuser;
    await writeFile(join(dir, "userlist.txt"), `"${user}" "${password}"\n`, { mode: 0o600 });
    await writeFile(join(dir, "pgrelay.yaml"), config("300ms"), { mode: 0o600 });
    await writeFile(join(dir, "stale.yaml"), config("1h"), { mode: 0o600 });
    relay = await spawnPgrelay(["--config", join(dir, "pgrelay.yaml"), "--admin", "127.0.0.1:0"]);
    stale = await spawnPgrelay(["--config", join(dir, "stale.yaml")]);
  });
  after(async () => {
    pair?.standby.sigcont();
    await relay?.stop("SIGKILL");
    await stale?.stop("SIGKILL");
    await pair?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("routes by application_name: reports to the standby, everything else to the primary", async () => {
    const report = await reach(relay, "report-daily");
    assert.deepEqual(report, { port: pair.standby.port, inRecovery: true });
    const app = await reach(relay, "app");
    assert.deepEqual(app, { port: pair.primary.port, inRecovery: false });
    assert.match(relay.stderr(), /"event":"session_ready".*"route":"reports"/);
  });

  it("admin: GET /clusters, per-host metrics, /readyz per route, and the route in GET /sessions", async () => {
    const admin = `http://127.0.0.1:${relay.admin!.port}`;
    const clusters = await (await fetch(`${admin}/clusters`)).json() as {
      clusters: { name: string; hosts: { host: string; role: string; up: boolean; timeline: number | null }[] }[];
    };
    const main = clusters.clusters.find((cluster) => cluster.name === "main")!;
    assert.deepEqual(
      main.hosts.map(({ host, role, up, timeline }) => ({ host, role, up, timeline })),
      [
        { host: `127.0.0.1:${pair.primary.port}`, role: "primary", up: true, timeline: 1 },
        { host: `127.0.0.1:${pair.standby.port}`, role: "standby", up: true, timeline: 1 },
      ],
    );
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    assert.match(metrics, new RegExp(`pgrelay_upstream_up\\{cluster="main",host="127.0.0.1:${pair.standby.port}"\\} 1`));
    assert.match(metrics, new RegExp(`pgrelay_upstream_role\\{cluster="main",host="127.0.0.1:${pair.primary.port}",role="primary"\\} 1`));
    assert.match(metrics, new RegExp(`pgrelay_upstream_role\\{cluster="main",host="127.0.0.1:${pair.primary.port}",role="standby"\\} 0`));
    assert.match(metrics, new RegExp(`pgrelay_upstream_lag_bytes\\{cluster="main",host="127.0.0.1:${pair.standby.port}"\\} \\d+`));
    assert.match(metrics, /pgrelay_route_sessions_total\{route="reports"\} [1-9]/);
    assert.match(metrics, /pgrelay_upstream_check_seconds_count [1-9]/);
    // The `dead` route has no eligible host, so pgrelay is not ready.
    const ready = await fetch(`${admin}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /no eligible host for route dead/);
    const c = client(relay, "report-listed");
    await c.connect();
    try {
      const sessions = await (await fetch(`${admin}/sessions`)).json() as { sessions: { application_name: string; route: string; host: string }[] };
      const row = sessions.sessions.find((session) => session.application_name === "report-listed");
      assert.deepEqual({ route: row?.route, host: row?.host }, { route: "reports", host: `127.0.0.1:${pair.standby.port}` });
    } finally {
      await c.end();
    }
  });

  it("SIGHUP reloads routes: new sessions follow them, existing sessions keep their server", async () => {
    const file = join(dir, "pgrelay.yaml");
    const reloads = () => relay.stderr().split('"event":"config_reloaded"').length - 1;
    const before = reloads();
    const kept = client(relay, "report-kept");
    await kept.connect();
    try {
      await writeFile(file, config("300ms").replace("target: standby", "target: primary"), { mode: 0o600 });
      process.kill(relay.pid, "SIGHUP");
      await waitFor(() => reloads() > before, "the reload", 15_000);
      assert.deepEqual(await reach(relay, "report-moved"), { port: pair.primary.port, inRecovery: false });
      const still = await kept.query<{ port: number }>("SELECT inet_server_port() AS port");
      assert.equal(still.rows[0]!.port, pair.standby.port);
    } finally {
      await kept.end().catch(() => {});
      await writeFile(file, config("300ms"), { mode: 0o600 });
      process.kill(relay.pid, "SIGHUP");
      await waitFor(() => reloads() > before + 1, "the second reload", 15_000);
    }
    assert.deepEqual(await reach(relay, "report-back"), { port: pair.standby.port, inRecovery: true });
  });

  it("routes on the TLS server name (SNI) of a client whose TLS pgrelay terminates", async () => {
    const pki = await makeTestPki(join(dir, "pki"));
    const file = join(dir, "sni.yaml");
    await writeFile(file, `
tls: { mode: terminate, cert: ${JSON.stringify(pki.proxy.certPath)}, key: ${JSON.stringify(pki.proxy.keyPath)} }
clusters:
  by_name: { hosts: ["127.0.0.1:${pair.primary.port}"] }
  others: { hosts: ["127.0.0.1:${pair.standby.port}"] }
routes:
  - { name: sni, match: { server_name: "LOCALHOST" }, cluster: by_name }
  - { name: others, cluster: others }
`, { mode: 0o600 });
    const sni = await spawnPgrelay(["--config", file]);
    try {
      const psql = (host: string) =>
        runPsql(["-A", "-t", "-c", "SELECT pg_is_in_recovery()"], {
          host,
          port: sni.address.port,
          ...pair.primary.users.superuser,
          database: "postgres",
          env: { PGSSLMODE: "require" },
        });
      const named = await psql("localhost"); // libpq sends SNI for a host name
      assert.equal(named.stdout.trim(), "f", named.stderr);
      const address = await psql("127.0.0.1"); // and none for an IP address
      assert.equal(address.stdout.trim(), "t", address.stderr);
      assert.match(sni.stderr(), /"event":"session_ready".*"route":"sni"/);
    } finally {
      await sni.stop("SIGKILL");
    }
  });

  it("a cluster's tls: overrides upstream_tls for its hosts", async () => {
    const file = join(dir, "tls.yaml");
    await writeFile(file, `
upstream_tls: { mode: require }
clusters:
  plain: { hosts: ["127.0.0.1:${pair.primary.port}"], tls: { mode: disable } }
  global: { hosts: ["127.0.0.1:${pair.primary.port}"] }
routes:
  - { name: plain, match: { application_name: plain }, cluster: plain }
  - { name: global, cluster: global }
`, { mode: 0o600 });
    const proxy = await spawnPgrelay(["--config", file]);
    try {
      // The test server has no TLS: the cluster that turns TLS off works, the one that inherits require fails.
      assert.deepEqual(await reach(proxy, "plain"), { port: pair.primary.port, inRecovery: false });
      const error = await reach(proxy, "other").then(() => undefined, (caught: Error & { code?: string }) => caught);
      assert.equal(error?.code, "08001");
      assert.match(proxy.stderr(), /"event":"upstream_failed".*the server does not accept TLS/);
    } finally {
      await proxy.stop("SIGKILL");
    }
  });

  it("retries the next host when the first refuses the connection, before the client sees anything", async () => {
    const reached = await reach(relay, "retry");
    assert.equal(reached.port, pair.primary.port);
    assert.match(relay.stderr(), new RegExp(`"event":"upstream_connect_failed".*"host":"127.0.0.1:${closedPort}"`));
  });

  it("holds a client while no host is eligible, then refuses it with FATAL 57P03 naming cluster and target", async () => {
    const c = client(relay, "dead");
    const started = performance.now();
    const error = await c.connect().then(() => undefined, (caught: Error & { code?: string }) => caught);
    const held = performance.now() - started;
    assert.ok(error, "the connection was refused");
    assert.equal(error.code, "57P03");
    assert.match(error.message, /cluster "dead".*target "primary"/);
    assert.ok(held >= 2500, `held ${Math.round(held)} ms, hold_timeout is 3 s`);
    await c.end().catch(() => {});
  });

  it("ends sessions, idle or busy, on a host that stops answering with FATAL 08006 once health checks mark it down", async () => {
    const c = client(relay, "report-idle");
    const ending = endingCode(c, 30_000);
    await c.connect();
    assert.equal((await c.query("SELECT pg_is_in_recovery() AS r")).rows[0].r, true);
    const busy = client(relay, "report-busy");
    busy.on("error", () => {});
    await busy.connect();
    const sleeping = busy.query("SELECT pg_sleep(60)").then(
      () => "(the query finished)",
      (caught: Error & { code?: string }) => caught.code,
    );
    await sleep(200);
    pair.standby.sigstop();
    try {
      assert.equal(await ending, "08006");
      assert.equal(await sleeping, "08006");
    } finally {
      pair.standby.sigcont();
      await c.end().catch(() => {});
      await busy.end().catch(() => {});
    }
    // The standby passes its checks again and serves reports.
    await waitFor(async () => (await reach(relay, "report-again").catch(() => undefined))?.inRecovery === true, "standby back", 30_000);
  });

  it("after promotion and the old primary's stop, new primary sessions reach the promoted standby", async () => {
    await pair.waitForReplay();
    const promoteStarted = performance.now();
    await pair.standby.promote();
    const promotedAt = performance.now();
    await pair.primary.stopImmediate();
    console.log(`failover: pg_ctl promote took ${Math.round(promotedAt - promoteStarted)} ms, the old primary's stop ${Math.round(performance.now() - promotedAt)} ms`);
    let reached: Reached | undefined;
    while (performance.now() - promotedAt < 30_000) {
      reached = await reach(relay, "app").catch(() => undefined);
      if (reached?.port === pair.standby.port) break;
      await sleep(100);
    }
    const took = performance.now() - promotedAt;
    console.log(`failover: promotion to the first session on the new primary took ${Math.round(took)} ms`);
    assert.deepEqual(reached, { port: pair.standby.port, inRecovery: false });
    // One interval is 300 ms; the margin covers a loaded machine and the held client's wait.
    assert.ok(took < 15_000, `took ${Math.round(took)} ms`);
  });

  it("split brain: the old primary restarted without standby.signal is never chosen over the promoted one", async () => {
    await pair.primary.start();
    const admin = `http://127.0.0.1:${relay.admin!.port}`;
    const roles = async () => {
      const body = await (await fetch(`${admin}/clusters`)).json() as {
        clusters: { name: string; hosts: { role: string; up: boolean; timeline: number | null }[] }[];
      };
      return body.clusters.find((cluster) => cluster.name === "main")!.hosts;
    };
    await waitFor(async () => (await roles()).every((host) => host.up && host.role === "primary"), "two primaries", 30_000);
    assert.deepEqual((await roles()).map((host) => host.timeline), [1, 2]);
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(await reach(relay, "app"), { port: pair.standby.port, inRecovery: false });
    }
  });

  it("a session that lands on a host whose role changed since its last check ends with 57P03 and says to retry", async () => {
    // `stale` checked once at start, when the promoted host was still a standby.
    const c = client(stale, "report-stale");
    const ending = endingCode(c, 30_000);
    const connected = await c.connect().then(() => undefined, (caught: Error & { code?: string }) => caught.code);
    const code = connected ?? await Promise.race([
      ending,
      c.query("SELECT 1").then(() => "(query succeeded)", (caught: Error & { code?: string }) => caught.code),
    ]);
    assert.equal(code, "57P03");
    await c.end().catch(() => {});
    assert.match(stale.stderr(), /"event":"wrong_server_role"/);
  });
});

describe("pgrelay --check with clusters and routes", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-routing-check-"));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const check = async (yaml: string) => {
    const file = join(dir, `c${Math.random().toString(16).slice(2)}.yaml`);
    await writeFile(file, yaml, { mode: 0o600 });
    return await runPgrelay(["--check", "--config", file]);
  };

  it("refuses a route to an unknown cluster and a target other than any without health checks", async () => {
    const result = await check(`
clusters:
  main: { hosts: ["127.0.0.1:5432"] }
routes:
  - { name: a, match: { user: alice }, cluster: nowhere, target: any }
  - { name: b, match: { user: bob }, cluster: main, target: primary }
  - { name: everyone, cluster: main }
`);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /routes\[0\]\.cluster: unknown cluster "nowhere"/);
    assert.match(result.stderr, /routes\[1\]\.target: target primary needs health checks on cluster "main"/);
  });

  it("refuses a route that can never match", async () => {
    const result = await check(`
clusters:
  main: { hosts: ["127.0.0.1:5432"] }
routes:
  - { name: everyone, cluster: main }
  - { name: never, match: { user: alice }, cluster: main }
`);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /routes\[1\].*can never match: everyone before it matches every session/);
  });

  it("accepts a valid config and names its clusters", async () => {
    const userlist = join(dir, "userlist.txt");
    await writeFile(userlist, `"health" "secret"\n`, { mode: 0o600 });
    const result = await check(`
auth: { file: ${JSON.stringify(userlist)} }
clusters:
  main:
    hosts: ["127.0.0.1:5432", "127.0.0.1:5433"]
    health: { user: health }
routes:
  - { name: reports, match: { application_name: "report*" }, cluster: main, target: standby }
  - { name: default, cluster: main, target: primary }
`);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /clusters main \(2 hosts\), routes 2/);
  });

  it("--explain shows the route the facts take after the policy decision", async () => {
    const file = join(dir, "explain.yaml");
    await writeFile(file, `
clusters:
  main: { hosts: ["127.0.0.1:5432"] }
routes:
  - { name: reports, match: { application_name: "report*" }, cluster: main }
  - { name: default, cluster: main }
`, { mode: 0o600 });
    const result = await runPgrelay(["--config", file, "--explain", "user=alice", "application_name=report-daily", "source=10.0.0.1"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /route reports: matches/);
    assert.match(result.stdout, /route: reports -> cluster "main", target any/);
  });

  it("needs a plaintext password for health.user in auth.file", async () => {
    const result = await check(`
clusters:
  main: { hosts: ["127.0.0.1:5432"], health: { user: health } }
routes:
  - { cluster: main, target: primary }
`);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /health\.user "health" needs auth\.file/);
  });
});
