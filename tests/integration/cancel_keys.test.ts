/**
 * pgrelay-issued cancel keys against a real PostgreSQL: the BackendKeyData a client gets is pgrelay's (its
 * pid is not the server's), a cancel with it still reaches the right backend (relay and auth.mode scram),
 * and a wrong secret or the key of an ended session is dropped without pgrelay connecting upstream.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { parseUserlist } from "../../src/auth/userlist.ts";
import type { LogFields, Logger } from "../../src/core/logger.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { frontend, RawClient } from "../support/raw_client.ts";
import { sleep, waitFor } from "../support/wait.ts";

type Line = LogFields & { event: string };

describe("pgrelay-issued cancel keys", () => {
  let cluster: PostgresCluster;
  const lines: Line[] = [];
  const logger: Logger = { log: (_level, event, fields = {}) => void lines.push({ ...fields, event }) };
  const proxies: Record<string, Proxy> = {};

  before(async () => {
    cluster = await startPostgres();
    const verifiers = await cluster.sql(
      `select '"' || rolname || '" "' || rolpassword || '"' from pg_authid where rolname = '${cluster.users.scram.user}'`,
    );
    proxies.relay = await startTestProxy(cluster, { logger });
    proxies.scram = await startTestProxy(cluster, { logger, authentication: { mode: "scram", users: parseUserlist(verifiers) } });
  });
  after(async () => {
    for (const proxy of Object.values(proxies)) await proxy.close();
    await cluster?.stop();
  });

  const connect = async (proxy: string, application = "cancel-keys") => {
    const client = new pg.Client({
      host: "127.0.0.1",
      port: proxies[proxy]!.address.port,
      ...cluster.users.scram,
      database: "postgres",
      application_name: application,
    });
    await client.connect();
    const key = client as unknown as { processID: number; secretKey: number };
    const backend = Number((await client.query("select pg_backend_pid() as pid")).rows[0].pid);
    return { client, pid: key.processID, secret: key.secretKey, backend };
  };

  /** Sends a CancelRequest to `proxy` and waits until pgrelay closes the connection. */
  const cancel = async (proxy: string, pid: number, secret: number) => {
    const canceller = await RawClient.connect("127.0.0.1", proxies[proxy]!.address.port);
    canceller.sendBytes(frontend.cancelRequest(pid, secret));
    await canceller.readRawUntilClose();
  };

  const active = async (backend: number) =>
    await cluster.sql(`select count(*) from pg_stat_activity where pid = ${backend} and state = 'active'`) === "1";

  const events = (event: string, pid: number) => lines.filter((l) => l.event === event && l.key_pid === pid);

  for (const proxy of ["relay", "scram"]) {
    it(`${proxy}: the client's key is pgrelay's, not the server's, and a cancel with it stops pg_sleep`, async () => {
      const a = await connect(proxy);
      try {
        assert.notEqual(a.pid, a.backend, "the pid the client got is not the server's");
        const context = proxies[proxy]!.sessions.find((s) => s.backendPid === a.backend);
        assert.ok(context, "the session keeps the server's real pid");
        assert.notEqual(context.backendSecret, undefined);
        const query = a.client.query("select pg_sleep(30)").then(() => "finished", (e: { code?: string }) => e.code);
        await waitFor(() => active(a.backend), "pg_sleep running");
        const started = Date.now();
        await cancel(proxy, a.pid, a.secret);
        assert.equal(await query, "57014");
        assert.ok(Date.now() - started < 10_000);
        assert.equal(events("cancel_request", a.pid).length, 1);
      } finally {
        await a.client.end();
      }
    });
  }

  it("a wrong secret cancels nothing and reaches no server; the right one then cancels", async () => {
    const a = await connect("relay");
    try {
      const query = a.client.query("select pg_sleep(30)").then(() => "finished", (e: { code?: string }) => e.code);
      await waitFor(() => active(a.backend), "pg_sleep running");
      await cancel("relay", a.pid, a.secret ^ 1);
      await sleep(300);
      assert.ok(await active(a.backend), "still sleeping");
      assert.equal(events("cancel_dropped", a.pid).length, 1);
      assert.equal(events("cancel_request", a.pid).length, 0, "no connection upstream for a wrong key");
      // The server's own key is not a key pgrelay issued either.
      const unknown = lines.filter((l) => l.event === "cancel_dropped").length;
      await cancel("relay", a.backend, a.secret);
      await sleep(300);
      assert.ok(await active(a.backend), "the server's pid with the client's secret cancels nothing");
      assert.equal(lines.filter((l) => l.event === "cancel_dropped").length, unknown + 1);
      await cancel("relay", a.pid, a.secret);
      assert.equal(await query, "57014");
    } finally {
      await a.client.end();
    }
  });

  it("the key of an ended session cancels nothing, and the registry holds live sessions only", async () => {
    const ended = await connect("relay", "cancel-keys-ended");
    const live = await connect("relay", "cancel-keys-live");
    try {
      await waitFor(() => proxies.relay!.cancelKeys === 2, "two live keys (earlier sessions' forgotten)");
      await ended.client.end();
      await waitFor(() => proxies.relay!.cancelKeys === 1, "the ended session's key forgotten");
      const query = live.client.query("select pg_sleep(30)").then(() => "finished", (e: { code?: string }) => e.code);
      await waitFor(() => active(live.backend), "pg_sleep running");
      await cancel("relay", ended.pid, ended.secret);
      await sleep(300);
      assert.equal(events("cancel_dropped", ended.pid).length, 1);
      assert.equal(events("cancel_request", ended.pid).length, 0);
      assert.ok(await active(live.backend), "the live session is untouched");
      await cancel("relay", live.pid, live.secret);
      assert.equal(await query, "57014");
    } finally {
      await live.client.end();
    }
    await waitFor(() => proxies.relay!.cancelKeys === 0, "every key forgotten");
  });
});
