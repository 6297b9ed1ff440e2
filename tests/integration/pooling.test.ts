/**
 * Connection pooling against a real PostgreSQL server, through pgrelay as users run it (a YAML config,
 * auth.mode scram with the server's own verifiers): transaction pooling multiplexes many clients over a few
 * server connections, a client's settings follow it from server to server, a client that leaves
 * mid-transaction never hands its transaction to another, a wait that times out answers ERROR 53300 and
 * keeps the client, session pooling resets a server before reuse, and cancels reach the server held now.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "node:net";
import pg from "pg";
import postgres from "postgres";
import { cancelRequest } from "../../src/protocol/frontend_messages.ts";
import { runPgbench, runPsql } from "../support/clients.ts";
import { type PgrelayProcess, spawnPgrelay } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";

describe("connection pooling", () => {
  let cluster: PostgresCluster;
  let relay: PgrelayProcess;
  let dir = "";

  /** Backends the server has for scram_user now (not counting the one asking). */
  const serverBackends = async (): Promise<number> => {
    const result = await runPsql(["-A", "-t", "-c", "select count(*) from pg_stat_activity where usename = 'scram_user' and datname = 'postgres' and pid <> pg_backend_pid()"], {
      host: cluster.host, port: cluster.port, ...cluster.users.superuser, database: "postgres",
    });
    assert.equal(result.code, 0, result.stderr);
    return Number(result.stdout.trim());
  };

  const client = (applicationName: string, database = "postgres") =>
    new pg.Client({
      host: relay.address.hostname,
      port: relay.address.port,
      ...cluster.users.scram,
      database,
      application_name: applicationName,
    });

  const admin = async (path: string) => {
    const response = await fetch(`http://${relay.admin!.hostname}:${relay.admin!.port}${path}`);
    return await response.text();
  };

  before(async () => {
    cluster = await startPostgres();
    dir = await mkdtemp(join(tmpdir(), "pgrelay-pooling-"));
    const verifiers = await runPsql(["-A", "-t", "-F", " ", "-c", "select '\"' || rolname || '\" \"' || rolpassword || '\"' from pg_authid where rolname = 'scram_user'"], {
      host: cluster.host, port: cluster.port, ...cluster.users.superuser, database: "postgres",
    });
    assert.equal(verifiers.code, 0, verifiers.stderr);
    await writeFile(join(dir, "userlist.txt"), verifiers.stdout, { mode: 0o600 });
    const setup = await runPsql(["-c", "create database pooled_session owner scram_user"], {
      host: cluster.host, port: cluster.port, ...cluster.users.superuser, database: "postgres",
    });
    assert.equal(setup.code, 0, setup.stderr);
    await writeFile(
      join(dir, "pgrelay.yaml"),
      `
auth: { mode: scram, file: ${JSON.stringify(join(dir, "userlist.txt"))} }
admin: { listen: "127.0.0.1:0" }
clusters:
  main: { hosts: ["127.0.0.1:${cluster.port}"] }
routes:
  - name: strict
    match: { application_name: "strict*" }
    cluster: main
    pool: { mode: transaction, size: 3, wait_timeout: 2s, on_pin: error }
  - name: sessions
    match: { database: pooled_session }
    cluster: main
    pool: { mode: session, size: 2 }
  - name: app
    cluster: main
    pool: { mode: transaction, size: 3, wait_timeout: 2s }
`,
      { mode: 0o600 },
    );
    relay = await spawnPgrelay(["--config", join(dir, "pgrelay.yaml"), "--admin", "127.0.0.1:0"]);
  });
  after(async () => {
    await relay?.stop("SIGKILL");
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("40 clients on a transaction pool of 3: every query answered, the server never sees more than 3 backends", async () => {
    const clients = Array.from({ length: 40 }, (_, i) => client(`many-${i}`));
    await Promise.all(clients.map((c) => c.connect()));
    let most = 0;
    const watching = (async () => {
      for (let i = 0; i < 10; i++) {
        most = Math.max(most, await serverBackends());
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const answers = await Promise.all(clients.map(async (c, i) => {
      const rows: number[] = [];
      for (let round = 0; round < 5; round++) {
        const result = await c.query("select $1::int as n from pg_sleep(0.005)", [i * 10 + round]);
        rows.push(result.rows[0].n);
      }
      return rows;
    }));
    await watching;
    answers.forEach((rows, i) => assert.deepEqual(rows, [0, 1, 2, 3, 4].map((round) => i * 10 + round)));
    most = Math.max(most, await serverBackends());
    assert.ok(most >= 1 && most <= 3, `the server saw ${most} backends for scram_user`);
    await Promise.all(clients.map((c) => c.end()));
    const pools = JSON.parse(await admin("/pools")) as { pools: Array<{ route: string; mode: string; servers_idle: number; servers_active: number }> };
    const app = pools.pools.find((p) => p.route === "app");
    assert.ok(app, JSON.stringify(pools));
    assert.equal(app.mode, "transaction");
    assert.ok(app.servers_idle + app.servers_active <= 3, JSON.stringify(app));
  });

  it("each client keeps its own settings (TimeZone, application_name) though the clients share servers", async () => {
    const a = client("alpha");
    const b = client("beta");
    await a.connect();
    await b.connect();
    await a.query("set timezone = 'Asia/Tokyo'");
    await b.query("set timezone = 'America/New_York'");
    for (let i = 0; i < 5; i++) {
      const [ra, rb] = await Promise.all([
        a.query("select current_setting('TimeZone') as tz, current_setting('application_name') as app"),
        b.query("select current_setting('TimeZone') as tz, current_setting('application_name') as app"),
      ]);
      assert.deepEqual(ra.rows[0], { tz: "Asia/Tokyo", app: "alpha" });
      assert.deepEqual(rb.rows[0], { tz: "America/New_York", app: "beta" });
    }
    await a.end();
    await b.end();
  });

  it("unreported settings (search_path, statement_timeout) follow their client, and a rolled-back SET does not", async () => {
    const a = client("paths-a");
    const b = client("paths-b");
    await a.connect();
    await b.connect();
    await a.query("set search_path = 'pg_catalog', \"it's\"");
    await a.query("begin");
    await a.query("set statement_timeout = '7s'");
    await a.query("rollback");
    await b.query("set statement_timeout = '9s'");
    for (let i = 0; i < 6; i++) {
      const [ra, rb] = await Promise.all([
        a.query("select current_setting('search_path') as path, current_setting('statement_timeout') as timeout"),
        b.query("select current_setting('search_path') as path, current_setting('statement_timeout') as timeout"),
      ]);
      assert.deepEqual(ra.rows[0], { path: 'pg_catalog, "it\'s"', timeout: "0" });
      assert.deepEqual(rb.rows[0], { path: '"$user", public', timeout: "9s" });
    }
    await a.end();
    await b.end();
  });

  it("LISTEN pins the client to its server (shown in /sessions), and unpin when gone", async () => {
    const pinned = client("pinned");
    await pinned.connect();
    await pinned.query("listen pooled_channel");
    const pid = (await pinned.query("select pg_backend_pid() as pid")).rows[0].pid;
    const sessions = JSON.parse(await admin("/sessions")) as { sessions: Array<{ application_name: string; pinned: string | null }> };
    assert.equal(sessions.sessions.find((x) => x.application_name === "pinned")?.pinned, "listen");
    // Others keep running on the rest of the pool meanwhile.
    const others = Array.from({ length: 6 }, (_, i) => client(`other-${i}`));
    await Promise.all(others.map((c) => c.connect()));
    await Promise.all(others.map((c) => c.query("select 1")));
    await Promise.all(others.map((c) => c.end()));
    assert.equal((await pinned.query("select pg_backend_pid() as pid")).rows[0].pid, pid, "still the same server");
    const notified = new Promise<string>((resolve) => pinned.on("notification", (n: { payload?: string }) => resolve(n.payload ?? "")));
    const sender = client("sender");
    await sender.connect();
    await sender.query("select pg_notify('pooled_channel', 'hello')");
    assert.equal(await notified, "hello", "the notification reached the pinned client");
    await sender.end();
    await pinned.query("unlisten *");
    const after = JSON.parse(await admin("/sessions")) as { sessions: Array<{ application_name: string; pinned: string | null }> };
    assert.equal(after.sessions.find((x) => x.application_name === "pinned")?.pinned, null);
    await pinned.end();
    assert.match(await admin("/metrics"), /pgrelay_pool_pinned_total\{reason="listen"\} [1-9]/);
  });

  it("on_pin: error answers a pinning statement with 0A000 and the client goes on", async () => {
    const strict = client("strict-client");
    await strict.connect();
    const error = await strict.query("create temp table t (n int)").then(() => undefined, (e: Error & { code?: string }) => e);
    assert.equal(error?.code, "0A000", String(error));
    assert.match(error!.message, /transaction pooling mode/);
    assert.equal((await strict.query("select 1 as one")).rows[0].one, 1);
    await strict.end();
  });

  it("a client that leaves inside a transaction: its server is closed, never handed on mid-transaction", async () => {
    const leaver = client("leaver");
    await leaver.connect();
    await leaver.query("begin");
    await leaver.query("create table left_behind (n int)");
    leaver.end().catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 200));
    const next = client("next");
    await next.connect();
    const status = await next.query("select count(*)::int as n from pg_class where relname = 'left_behind'");
    assert.equal(status.rows[0].n, 0, "the aborted transaction's table is not visible");
    const inTransaction = await next.query("select now() = statement_timestamp() as fresh");
    assert.equal(inTransaction.rows[0].fresh, true, "the next client is not inside the leaver's transaction");
    await next.end();
  });

  it("a client that waits past wait_timeout gets ERROR 53300 and stays connected", async () => {
    const holders = [client("h1"), client("h2"), client("h3")];
    const waiter = client("waiter");
    await Promise.all([...holders, waiter].map((c) => c.connect()));
    await Promise.all(holders.map((c) => c.query("begin")));
    const error = await waiter.query("select 1").then(() => undefined, (e: Error & { code?: string }) => e);
    assert.ok(error, "the waiter's query failed");
    assert.equal((error as { code?: string }).code, "53300", String(error));
    assert.match(error.message, /wait_timeout/);
    await Promise.all(holders.map((c) => c.query("commit")));
    const retried = await waiter.query("select 42 as n");
    assert.equal(retried.rows[0].n, 42, "the waiter stayed connected and its retry works");
    await Promise.all([...holders, waiter].map((c) => c.end()));
  });

  it("session pooling: a server is reset (DISCARD ALL) before the next client gets it", async () => {
    const first = client("first", "pooled_session");
    await first.connect();
    await first.query("set work_mem = '7MB'");
    const pid = (await first.query("select pg_backend_pid() as pid")).rows[0].pid;
    await first.end();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = client("second", "pooled_session");
    await second.connect();
    const row = (await second.query("select pg_backend_pid() as pid, current_setting('work_mem') as work_mem")).rows[0];
    assert.equal(row.pid, pid, "the same server connection was reused");
    assert.notEqual(row.work_mem, "7MB", "the previous client's setting was reset");
    await second.end();
  });

  it("a cancel reaches the server the client holds now", async () => {
    const c = client("cancelled");
    await c.connect();
    const other = client("bystander");
    await other.connect();
    const running = c.query("select pg_sleep(30)").then(() => undefined, (e: Error & { code?: string }) => e.code);
    const bystander = other.query("select pg_sleep(0.5) as done");
    await new Promise((resolve) => setTimeout(resolve, 200));
    // pgrelay's key, as the client got it in BackendKeyData, sent the way libpq sends a CancelRequest.
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    await sendCancel(relay.address.port, processID, secretKey);
    assert.equal(await running, "57014", "the sleeping query was cancelled");
    assert.equal((await bystander).rows[0].done, "", "the other client's query went on");
    await c.end();
    await other.end();
  });

  it("named protocol-level statements (pgbench -M prepared, npm pg named queries) pin the client and work", async () => {
    const script = join(dir, "prepared.sql");
    await writeFile(script, "select 1;\n");
    const result = await runPgbench(["-M", "prepared", "-c", "3", "-t", "20", "-n", "-f", script], {
      host: relay.address.hostname, port: relay.address.port, ...cluster.users.scram, database: "postgres",
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /number of transactions actually processed: 60\/60/);
    const named = client("named");
    await named.connect();
    for (let i = 0; i < 3; i++) {
      const rows = await named.query({ name: "double", text: "select $1::int * 2 as n", values: [i] });
      assert.equal(rows.rows[0].n, i * 2);
    }
    const sessions = JSON.parse(await admin("/sessions")) as { sessions: Array<{ application_name: string; pinned: string | null }> };
    assert.equal(sessions.sessions.find((x) => x.application_name === "named")?.pinned, "protocol_prepare");
    await named.query("deallocate all");
    const after = JSON.parse(await admin("/sessions")) as { sessions: Array<{ application_name: string; pinned: string | null }> };
    assert.equal(after.sessions.find((x) => x.application_name === "named")?.pinned, null);
    await named.end();
  });

  it("npm postgres (prepares every query by default) works through a transaction pool, pinned; prepare: false multiplexes", async () => {
    const options = {
      host: relay.address.hostname,
      port: relay.address.port,
      username: cluster.users.scram.user,
      password: cluster.users.scram.password,
      database: "postgres",
      max: 1,
    };
    const prepared = postgres({ ...options, connection: { application_name: "postgres-js" } });
    const unprepared = postgres({ ...options, prepare: false, connection: { application_name: "postgres-js-simple" } });
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => prepared`select ${i}::int as i`));
      assert.deepEqual(results.map((rows) => rows[0]!.i), Array.from({ length: 50 }, (_, i) => i));
      const plain = await Promise.all(Array.from({ length: 50 }, (_, i) => unprepared`select ${i}::int * 3 as i`));
      assert.deepEqual(plain.map((rows) => rows[0]!.i), Array.from({ length: 50 }, (_, i) => i * 3));
      const sessions = JSON.parse(await admin("/sessions")) as { sessions: Array<{ application_name: string; pinned: string | null }> };
      assert.equal(sessions.sessions.find((x) => x.application_name === "postgres-js")?.pinned, "protocol_prepare");
      assert.equal(sessions.sessions.find((x) => x.application_name === "postgres-js-simple")?.pinned, null);
    } finally {
      await prepared.end();
      await unprepared.end();
    }
  });

  it("pgbench -C (a new connection and SCRAM login per transaction) runs through a transaction pool", async () => {
    const script = join(dir, "select.sql");
    await writeFile(script, "select 1;\n");
    const result = await runPgbench(["-C", "-c", "4", "-t", "25", "-n", "-f", script], {
      host: relay.address.hostname, port: relay.address.port, ...cluster.users.scram, database: "postgres",
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /number of transactions actually processed: 100\/100/);
    const pools = JSON.parse(await admin("/pools")) as { pools: Array<Record<string, number | string>> };
    const app = pools.pools.find((p) => p.route === "app")!;
    const open = Number(app.servers_active) + Number(app.servers_idle) + Number(app.servers_used) + Number(app.servers_login);
    assert.ok(open <= 3, `the app pool holds ${open} server connections: ${JSON.stringify(app)}`);
    assert.doesNotMatch(await admin("/metrics"), /pgrelay_pool_server_logins_total\{[^}]*result="failed"[^}]*\} [1-9]/);
  });
});

/** Sends a CancelRequest with this key to pgrelay and waits for it to close the connection. */
function sendCancel(port: number, processId: number, secret: number): Promise<void> {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setInt32(0, secret);
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(cancelRequest(processId, key)));
    socket.on("close", () => resolve());
    socket.on("error", reject);
  });
}
