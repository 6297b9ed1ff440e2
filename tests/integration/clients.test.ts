/** Real clients through pgrelay against a real PostgreSQL, compared with the same clients direct. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import postgres from "postgres";
import type { Proxy } from "../../src/core/proxy.ts";
import { runPgbench, runPsql } from "../support/clients.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";

describe("real clients through pgrelay", () => {
  let cluster: PostgresCluster;
  let proxy: Proxy;
  let dir = "";
  const via = () => ({ host: "127.0.0.1", port: proxy.address.port, ...cluster.users.scram, database: "app" });
  const direct = () => ({ host: cluster.host, port: cluster.port, ...cluster.users.scram, database: "app" });

  before(async () => {
    cluster = await startPostgres();
    proxy = await startTestProxy(cluster);
    dir = await mkdtemp(join(tmpdir(), "pgrelay-clients-"));
  });
  after(async () => {
    await proxy?.close();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("psql runs a query and a multi-statement query with the same output as direct", async () => {
    const script = ["-A", "-c", "create temp table t(a int); insert into t select generate_series(1, 100); select sum(a), count(*) from t"];
    const through = await runPsql(script, via());
    const straight = await runPsql(script, direct());
    assert.equal(through.code, 0, through.stderr);
    assert.equal(through.stdout, "CREATE TABLE\nINSERT 0 100\nsum|count\n5050|100\n(1 row)\n");
    assert.equal(through.stdout, straight.stdout);
  });

  it("psql \\copy in and out moves the same bytes", async () => {
    const source = join(dir, "in.tsv");
    const target = join(dir, "out.tsv");
    const lines = Array.from({ length: 20000 }, (_, i) => `${i}\tline ${i} ${"é".repeat(i % 7)}\t\\N`);
    await writeFile(source, lines.join("\n") + "\n");
    const result = await runPsql([
      "-c", "create table copy_roundtrip(id int, txt text, nothing text)",
      "-c", `\\copy copy_roundtrip from '${source}'`,
      "-c", `\\copy (select * from copy_roundtrip order by id) to '${target}'`,
    ], via());
    assert.equal(result.code, 0, result.stderr);
    const hash = async (file: string) => createHash("sha256").update(await readFile(file)).digest("hex");
    assert.equal(await hash(target), await hash(source));
  });

  it("a COPY that the client aborts (bad row) fails cleanly and the session goes on", async () => {
    const bad = join(dir, "bad.tsv");
    await writeFile(bad, "1\tok\n2\tok\nnot-a-number\toops\n");
    const result = await runPsql([
      "-v", "ON_ERROR_STOP=0",
      "-c", "create temp table c(a int, b text)",
      "-c", `\\copy c from '${bad}'`,
      "-A", "-t", "-c", "select count(*) from c",
    ], via());
    assert.match(result.stderr, /invalid input syntax for type integer: "not-a-number"/);
    assert.equal(result.stdout.trim().split("\n").at(-1), "0");
  });

  it("NOTICE and errors arrive with every field exactly as direct", async () => {
    const sql = [
      "\\set VERBOSITY verbose",
      "DO $$ BEGIN RAISE NOTICE 'hello %', 42 USING DETAIL = 'notice detail', HINT = 'notice hint'; END $$;",
      "DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = '22012'; END $$;",
      "SELECT 1/0;",
    ].join("\n");
    const opts = { input: sql };
    const through = await runPsql(["-v", "ON_ERROR_STOP=0"], { ...via(), ...opts });
    const straight = await runPsql(["-v", "ON_ERROR_STOP=0"], { ...direct(), ...opts });
    assert.match(through.stderr, /NOTICE:  00000: hello 42\nDETAIL:  notice detail\nHINT:  notice hint\n/);
    assert.match(through.stderr, /ERROR:  22012: boom\nDETAIL:  the detail\nHINT:  the hint\nCONTEXT:  PL\/pgSQL function inline_code_block line 1 at RAISE\nLOCATION:  exec_stmt_raise, pl_exec\.c:\d+/);
    assert.match(through.stderr, /ERROR:  22012: division by zero\nLOCATION:  int4div, int\.c:\d+/);
    assert.equal(through.stderr, straight.stderr);
  });

  it("pgbench initialises and runs a short benchmark with no failures", async () => {
    const init = await runPgbench(["-i", "-s", "1", "-q"], via());
    assert.equal(init.code, 0, init.stderr);
    const run = await runPgbench(["-n", "-c", "4", "-j", "2", "-t", "200", "-M", "extended"], via());
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /number of transactions actually processed: 800\/800/);
    assert.match(run.stdout, /number of failed transactions: 0 /);
  });

  it("npm pg: named prepared statements and binary parameters round-trip", async () => {
    const client = new pg.Client({ ...via(), host: "127.0.0.1" });
    await client.connect();
    try {
      const blob = Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 31) & 255));
      const rows = [];
      for (let i = 0; i < 5; i++) {
        const result = await client.query({
          name: "echo",
          text: "select $1::int + 1 as next, $2::bytea as blob, md5($2::bytea) as sum",
          values: [i, blob],
        });
        rows.push(result.rows[0]);
      }
      assert.deepEqual(rows.map((r) => r.next), [1, 2, 3, 4, 5]);
      assert.ok(Buffer.from(rows[4].blob).equals(blob));
      assert.equal(rows[0].sum, createHash("md5").update(blob).digest("hex"));
      const prepared = await client.query("select name from pg_prepared_statements");
      assert.deepEqual(prepared.rows, [{ name: "echo" }]);
    } finally {
      await client.end();
    }
  });

  it("npm postgres: 200 pipelined queries on one connection come back in order", async () => {
    const sql = postgres({ ...via(), username: cluster.users.scram.user, max: 1, prepare: true });
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => sql`select ${i}::int as i, repeat('z', ${i}) as pad`),
      );
      assert.deepEqual(results.map((rows) => rows[0]!.i), Array.from({ length: 200 }, (_, i) => i));
      assert.equal(results[199]![0]!.pad.length, 199);
    } finally {
      await sql.end();
    }
  });

  it("LISTEN/NOTIFY between two sessions", async () => {
    const listener = new pg.Client(via());
    const notifier = new pg.Client(via());
    await listener.connect();
    await notifier.connect();
    try {
      const received = new Promise<pg.Notification>((resolve) => listener.on("notification", resolve));
      await listener.query("LISTEN relay_channel");
      await notifier.query("SELECT pg_notify('relay_channel', 'payload-✓')");
      const notification = await received;
      assert.equal(notification.channel, "relay_channel");
      assert.equal(notification.payload, "payload-✓");
    } finally {
      await listener.end();
      await notifier.end();
    }
  });

  it("a CancelRequest through pgrelay cancels pg_sleep with 57014", async () => {
    const sql = postgres({ ...via(), username: cluster.users.scram.user, max: 1 });
    try {
      const started = Date.now();
      const query = sql`select pg_sleep(20)`;
      const outcome = query.then(() => "finished", (error: { code?: string }) => error.code);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await query.cancel();
      assert.equal(await outcome, "57014");
      assert.ok(Date.now() - started < 10_000, "cancelled long before pg_sleep would end");
    } finally {
      await sql.end();
    }
  });

  it("session context tracks user, database, application_name, backend pid and transaction status", async () => {
    const client = new pg.Client({ ...via(), application_name: "ctx-test" });
    await client.connect();
    try {
      const pid = (await client.query("select pg_backend_pid() as pid")).rows[0].pid;
      await client.query("begin");
      const context = proxy.sessions.find((s) => s.applicationName === "ctx-test");
      assert.ok(context);
      assert.equal(context.user, cluster.users.scram.user);
      assert.equal(context.database, "app");
      assert.equal(context.backendPid, pid);
      assert.equal(context.transactionStatus, "in_transaction");
      assert.equal(context.parameters.get("application_name"), "ctx-test");
      assert.equal(context.client.hostname, "127.0.0.1");
      await client.query("rollback");
      assert.equal(context.transactionStatus, "idle");
      assert.ok(context.fromServer.bytes > 0 && context.fromClient.bytes > 0);
    } finally {
      await client.end();
    }
  });
});
