/** Operating pgrelay: admin HTTP (/metrics, /healthz, /readyz), SIGHUP reload and SIGTERM drain. */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { runPsql } from "../support/clients.ts";
import { freePort } from "../support/free_port.ts";
import { type PgrelayProcess, spawnPgrelay } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { RawClient } from "../support/raw_client.ts";
import { sleep, waitFor } from "../support/wait.ts";


async function get(proxy: PgrelayProcess, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${proxy.admin!.port}${path}`);
  return { status: response.status, body: await response.text() };
}

/** The value of one series in Prometheus text, e.g. `metric(text, 'pgrelay_x_total{outcome="ok"}')`. */
function metric(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}


describe("operations", () => {
  let cluster: PostgresCluster;
  let dir = "";
  const login = (port: number) => ({ host: "127.0.0.1", port, ...cluster.users.scram, database: "postgres" });

  before(async () => {
    cluster = await startPostgres();
    dir = await mkdtemp(join(tmpdir(), "pgrelay-ops-"));
  });
  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("/metrics counts a known workload exactly", async () => {
    const proxy = await spawnPgrelay(["--upstream", `127.0.0.1:${cluster.port}`, "--admin", "127.0.0.1:0"]);
    try {
      for (let i = 0; i < 3; i++) assert.equal((await runPsql(["-c", "select 1"], login(proxy.address.port))).code, 0);
      assert.equal((await runPsql(["-c", "select 1"], { ...login(proxy.address.port), password: "wrong" })).code, 2);
      assert.equal((await runPsql(["-c", "select 1/0"], login(proxy.address.port))).code, 1);
      const garbage = await RawClient.connect("127.0.0.1", proxy.address.port);
      garbage.sendBytes(new TextEncoder().encode("garbage!"));
      await garbage.readRawUntilClose();
      const client = new pg.Client(login(proxy.address.port));
      await client.connect();
      for (const sql of ["begin", "select 1", "commit", "begin", "rollback"]) await client.query(sql);
      await client.end();
      await sleep(200);
      const { status, body } = await get(proxy, "/metrics");
      assert.equal(status, 200);
      assert.equal(metric(body, 'pgrelay_client_connections_total{outcome="ok"}'), 5);
      assert.equal(metric(body, 'pgrelay_client_connections_total{outcome="auth_failed"}'), 1);
      assert.equal(metric(body, 'pgrelay_client_connections_total{outcome="protocol_error"}'), 1);
      assert.equal(metric(body, 'pgrelay_client_connections_active{phase="ready"}'), 0);
      assert.equal(metric(body, 'pgrelay_messages_total{from="client",type="Q"}'), 9);
      assert.equal(metric(body, "pgrelay_queries_total"), 9);
      assert.equal(metric(body, "pgrelay_query_duration_seconds_count"), 9);
      assert.equal(metric(body, 'pgrelay_server_errors_total{class="22"}'), 1);
      assert.equal(metric(body, 'pgrelay_server_errors_total{class="28"}'), 1);
      assert.equal(metric(body, 'pgrelay_transactions_total{result="commit"}'), 1);
      assert.equal(metric(body, 'pgrelay_transactions_total{result="rollback"}'), 1);
      assert.equal(metric(body, "pgrelay_handshake_duration_seconds_count"), 5);
      assert.equal(metric(body, "pgrelay_session_duration_seconds_count"), 7);
      assert.equal(metric(body, "pgrelay_upstream_up"), 1);
      const fromClient = metric(body, 'pgrelay_bytes_total{from="client"}');
      const fromServer = metric(body, 'pgrelay_bytes_total{from="server"}');
      assert.ok(fromClient > 500 && fromClient < 5000, `bytes from client ${fromClient}`);
      assert.ok(fromServer > 2000 && fromServer < 20000, `bytes from server ${fromServer}`);
      assert.doesNotMatch(body, /127\.0\.0\.1|scram_user|select/, "no addresses, users or query text in labels");
    } finally {
      await proxy.stop();
    }
  });

  it("/healthz answers; /readyz turns 503 while the upstream is down and 200 when it is back", async () => {
    const proxy = await spawnPgrelay(["--upstream", `127.0.0.1:${cluster.port}`, "--admin", "127.0.0.1:0"]);
    try {
      assert.deepEqual(await get(proxy, "/healthz"), { status: 200, body: "ok\n" });
      assert.equal((await get(proxy, "/readyz")).status, 200);
      assert.equal((await get(proxy, "/nope")).status, 404);
      await cluster.stopOnly();
      await sleep(1100);
      const down = await get(proxy, "/readyz");
      assert.equal(down.status, 503);
      assert.match(down.body, new RegExp(`upstream 127\\.0\\.0\\.1:${cluster.port} unreachable: connection refused`));
      assert.equal(metric((await get(proxy, "/metrics")).body, "pgrelay_upstream_up"), 0);
      await cluster.start();
      await sleep(1100);
      assert.equal((await get(proxy, "/readyz")).status, 200);
    } finally {
      await proxy.stop();
    }
  });

  it("SIGHUP applies a valid config to new sessions, keeps the old one on a bad file, and drops no session", async () => {
    const file = join(dir, "reload.yaml");
    await writeFile(file, `upstream: 127.0.0.1:${cluster.port}\n`);
    const proxy = await spawnPgrelay(["--config", file]);
    const client = new pg.Client(login(proxy.address.port));
    await client.connect();
    try {
      const longQuery = client.query("select pg_sleep(1.5), 'survived' as word");
      longQuery.catch(() => {}); // awaited below; a failure there is the assertion
      await writeFile(file, "upstream: [broken\n");
      process.kill(proxy.pid, "SIGHUP");
      await waitFor(() => proxy.stderr().includes("config_reload_failed"), "reload failure log");
      assert.match(proxy.stderr(), /"event":"config_reload_failed","error":"[^"]*reload\.yaml:\d+: \(syntax\)/);
      assert.equal((await runPsql(["-A", "-t", "-c", "select 'old config'"], login(proxy.address.port))).stdout.trim(), "old config");
      const deadPort = await freePort();
      await writeFile(file, `upstream: 127.0.0.1:${deadPort}\n`);
      process.kill(proxy.pid, "SIGHUP");
      await waitFor(() => proxy.stderr().includes("config_reloaded"), "reload log");
      const refused = await runPsql(["-c", "select 1"], login(proxy.address.port));
      assert.match(refused.stderr, /FATAL:  pgrelay could not connect to the database server \(session /);
      await waitFor(() => proxy.stderr().includes(`could not connect to upstream 127.0.0.1:${deadPort}`), "the new upstream in the log");
      assert.equal((await longQuery).rows[0].word, "survived");
      assert.equal((await client.query("select 'still here' as w")).rows[0].w, "still here");
    } finally {
      await client.end().catch(() => {});
      await proxy.stop();
    }
  });

  it("SIGTERM drains: running work finishes, an open transaction gets 57P01 at the timeout, exit 0", async () => {
    const proxy = await spawnPgrelay(["--upstream", `127.0.0.1:${cluster.port}`, "--drain-timeout", "1500ms", "--admin", "127.0.0.1:0"]);
    const idleInTransaction = new pg.Client(login(proxy.address.port));
    const busy = new pg.Client(login(proxy.address.port));
    await idleInTransaction.connect();
    await busy.connect();
    const errors: string[] = [];
    idleInTransaction.on("error", (error: Error & { code?: string }) => errors.push(error.code ?? error.message));
    await idleInTransaction.query("begin");
    await idleInTransaction.query("create temp table pending(a int)");
    try {
      const work = busy.query("select pg_sleep(0.5), 'done' as status");
      const started = Date.now();
      process.kill(proxy.pid, "SIGTERM");
      await waitFor(() => proxy.stderr().includes('"event":"draining"'), "drain start");
      assert.equal((await get(proxy, "/readyz")).status, 503, "not ready while draining");
      const late = await runPsql(["-c", "select 1"], login(proxy.address.port));
      assert.equal(late.code, 2, "new connections are refused while draining");
      assert.equal((await work).rows[0].status, "done", "work in flight finishes");
      await busy.end();
      const code = await proxy.exited;
      const elapsed = Date.now() - started;
      assert.equal(code, 0);
      assert.ok(elapsed >= 1400 && elapsed < 5000, `exited after ${elapsed} ms`);
      await waitFor(() => errors.length > 0, "the error on the idle-in-transaction client", 2000);
      assert.equal(errors[0], "57P01", "the client was told why: admin shutdown");
    } finally {
      await idleInTransaction.end().catch(() => {});
      await busy.end().catch(() => {});
      await proxy.stop();
    }
  });

  it("a second SIGTERM exits at once", async () => {
    const proxy = await spawnPgrelay(["--upstream", `127.0.0.1:${cluster.port}`, "--drain-timeout", "60s"]);
    const client = new pg.Client(login(proxy.address.port));
    client.on("error", () => {});
    await client.connect();
    const started = Date.now();
    process.kill(proxy.pid, "SIGTERM");
    await waitFor(() => proxy.stderr().includes('"event":"draining"'), "drain start");
    process.kill(proxy.pid, "SIGTERM");
    assert.equal(await proxy.exited, 0);
    assert.ok(Date.now() - started < 3000);
    await client.end().catch(() => {});
  });
});
