/**
 * Routing and failover against a PostgreSQL 18 primary and streaming standby (issue 10), the subset of
 * routing_failover.test.ts (PostgreSQL 15) that PostgreSQL 18 changes: the cluster speaks direct TLS to
 * both hosts (`tls.negotiation: direct`, health checks included), protocol 3.2 sessions get pgrelay's own
 * 32-byte cancel keys whose cancels reach the right host, and after a promotion new sessions, and their
 * cancels, reach the promoted standby. pgrelay runs as a process with a config file.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { cancelRequest } from "../../src/protocol/frontend_messages.ts";
import { type PgrelayProcess, spawnPgrelay } from "../support/pgrelay.ts";
import type { PostgresCluster } from "../support/postgres.ts";
import { dataRowValues, errorFields, frontend, RawClient } from "../support/raw_client.ts";
import { type ReplicatedPair, startReplicatedPair } from "../support/replication.ts";
import { sleep, waitFor } from "../support/wait.ts";

const PROTOCOL_3_2 = (3 << 16) | 2;

interface Reached {
  port: number;
  inRecovery: boolean;
  /** pg_stat_ssl.ssl of the server session: the upstream leg is TLS. */
  ssl: boolean;
}

/** A protocol 3.2 session through pgrelay: pgrelay's BackendKeyData (`pid`, `key`) and the server's pid. */
interface Session32 {
  client: RawClient;
  pid: number;
  key: Uint8Array;
  backend: number;
  port: number;
}

describe("routing and failover with a PostgreSQL 18 primary and standby (direct TLS, protocol 3.2)", () => {
  let pair: ReplicatedPair;
  let dir = "";
  let relay: PgrelayProcess;

  before(async () => {
    pair = await startReplicatedPair({ version: 18, ssl: true });
    dir = await mkdtemp(join(tmpdir(), "pgrelay-routing-pg18-"));
    const { user, password } = pair.primary.users.superuser;
    await writeFile(join(dir, "userlist.txt"), `"${user}" "${password}"\n`, { mode: 0o600 });
    const ca = JSON.stringify(pair.primary.pki!.ca.certPath);
    await writeFile(
      join(dir, "pgrelay.yaml"),
      `
auth: { file: ${JSON.stringify(join(dir, "userlist.txt"))} }
routing: { hold_timeout: 5s }
clusters:
  main:
    hosts: ["127.0.0.1:${pair.primary.port}", "127.0.0.1:${pair.standby.port}"]
    health: { interval: 300ms, timeout: 2s, user: postgres, database: postgres }
    tls: { mode: verify-full, ca: ${ca}, server_name: localhost, negotiation: direct }
routes:
  - { name: reports, match: { application_name: "report*" }, cluster: main, target: standby }
  - { name: default, cluster: main, target: primary }
`,
      { mode: 0o600 },
    );
    relay = await spawnPgrelay(["--config", join(dir, "pgrelay.yaml")]);
  });
  after(async () => {
    await relay?.stop("SIGKILL");
    await pair?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Connects through pgrelay (npm pg, protocol 3.0) and reports which server answered, its role and TLS. */
  const reach = async (applicationName: string): Promise<Reached> => {
    const c = new pg.Client({
      host: relay.address.hostname,
      port: relay.address.port,
      ...pair.primary.users.superuser,
      database: "postgres",
      application_name: applicationName,
      connectionTimeoutMillis: 30_000,
    });
    c.on("error", () => {});
    await c.connect();
    try {
      const result = await c.query<Reached>(
        `SELECT inet_server_port() AS port, pg_is_in_recovery() AS "inRecovery",
                (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl`,
      );
      return { ...result.rows[0]! };
    } finally {
      await c.end().catch(() => {});
    }
  };

  const session32 = async (applicationName: string): Promise<Session32> => {
    const client = await RawClient.connect(relay.address.hostname, relay.address.port);
    const { user, password } = pair.primary.users.superuser;
    client.sendBytes(
      frontend.startupMessage(
        { user, database: "postgres", application_name: applicationName },
        PROTOCOL_3_2,
      ),
    );
    const messages = await client.authenticate(password);
    assert.equal(
      messages.find((m) => m.type === "v"),
      undefined,
      "no NegotiateProtocolVersion: 3.2 end to end",
    );
    const keyData = messages.find((m) => m.type === "K");
    assert.ok(keyData, `no BackendKeyData in ${messages.map((m) => m.type).join("")}`);
    client.query("SELECT pg_backend_pid(), inet_server_port()");
    const row = (await client.readUntilReady()).find((m) => m.type === "D");
    assert.ok(row);
    const [backend, port] = dataRowValues(row.body).map(Number);
    const body = keyData.body;
    return {
      client,
      pid: new DataView(body.buffer, body.byteOffset).getInt32(0),
      key: body.slice(4),
      backend: backend!,
      port: port!,
    };
  };

  /** Sends a CancelRequest to pgrelay and waits for it to close the connection, as libpq does. */
  const cancel = async (pid: number, key: Uint8Array): Promise<void> => {
    const client = await RawClient.connect(relay.address.hostname, relay.address.port);
    client.sendBytes(cancelRequest(pid, key));
    await client.readRawUntilClose();
    await client.close();
  };

  const serverOf = (port: number): PostgresCluster =>
    port === pair.primary.port ? pair.primary : pair.standby;
  const sleeping = async (session: Session32) =>
    await serverOf(session.port).sql(
      `SELECT count(*) FROM pg_stat_activity WHERE pid = ${session.backend} AND state = 'active'`,
    ) === "1";
  /** Starts pg_sleep(30) and resolves with the SQLSTATE it ends with, or "finished". */
  const sleepOutcome = (session: Session32): Promise<string> => {
    session.client.query("SELECT pg_sleep(30)");
    return session.client.readUntilReady(40_000).then((messages) => {
      const error = messages.find((m) => m.type === "E");
      return error ? errorFields(error.body)["C"] ?? "?" : "finished";
    });
  };

  it("routes reports to the standby and the rest to the primary, both over direct TLS", async () => {
    assert.equal(pair.primary.version, 18);
    assert.deepEqual(await reach("report-daily"), { port: pair.standby.port, inRecovery: true, ssl: true });
    assert.deepEqual(await reach("app"), { port: pair.primary.port, inRecovery: false, ssl: true });
  });

  it("protocol 3.2: pgrelay's 32-byte keys, and a cancel reaches the standby's session and not the primary's", async () => {
    const report = await session32("report-32");
    const app = await session32("app-32");
    try {
      assert.equal(report.port, pair.standby.port);
      assert.equal(app.port, pair.primary.port);
      for (const session of [report, app]) {
        assert.equal(session.key.length, 32, "as long as PostgreSQL 18's own keys");
        assert.notEqual(session.pid, session.backend, "the key is pgrelay's, not the server's");
      }
      const reportDone = sleepOutcome(report);
      const appDone = sleepOutcome(app);
      await waitFor(async () => await sleeping(report) && await sleeping(app), "both sessions sleeping");

      await cancel(report.pid, report.key);
      assert.equal(await reportDone, "57014", "the standby's query was cancelled");
      assert.ok(await sleeping(app), "the primary's session is untouched");

      await cancel(app.pid, app.key);
      assert.equal(await appDone, "57014", "the primary's query was cancelled with its own key");
    } finally {
      await report.client.close();
      await app.client.close();
    }
  });

  it("after promotion and the old primary's stop, new sessions and their cancels reach the promoted standby", async () => {
    // No waitForReplay(): nothing here reads data written before the promotion, and on an idle PostgreSQL 18
    // primary with synchronous_commit off the last WAL page can take seconds to reach the standby.
    await pair.standby.promote();
    const promotedAt = performance.now();
    await pair.primary.stopImmediate();
    let reached: Reached | undefined;
    while (performance.now() - promotedAt < 30_000) {
      reached = await reach("app").catch(() => undefined);
      if (reached?.port === pair.standby.port) break;
      await sleep(100);
    }
    assert.deepEqual(reached, { port: pair.standby.port, inRecovery: false, ssl: true });

    const session = await session32("app-after");
    try {
      assert.equal(session.port, pair.standby.port);
      assert.equal(session.key.length, 32);
      const done = sleepOutcome(session);
      await waitFor(() => sleeping(session), "the session sleeping on the new primary");
      await cancel(session.pid, session.key);
      assert.equal(await done, "57014");
    } finally {
      await session.client.close();
    }
  });
});
