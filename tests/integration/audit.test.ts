/** The audit log with real PostgreSQL and real clients (psql, npm pg, postgres.js), through an in-process pgrelay. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import postgres from "postgres";
import { AuditLog } from "../../src/audit/audit_log.ts";
import type { AuditSettings } from "../../src/audit/audit_schema.ts";
import type { AuditWriter } from "../../src/audit/audit_writer.ts";
import { MemoryAuditWriter as MemoryWriter, textOf } from "../support/memory_audit_writer.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import { ProxyMetrics } from "../../src/metrics/proxy_metrics.ts";
import { parsePolicy } from "../../src/policy/policy_schema.ts";
import { runPsql } from "../support/clients.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { sleep } from "../support/wait.ts";

const SECRET = "s3cr3t-param-value";


describe("audit log with real clients", () => {
  let cluster: PostgresCluster;
  const proxies: Proxy[] = [];

  const start = async (settings: Partial<AuditSettings> = {}) => {
    const writer = new MemoryWriter();
    const audit = new AuditLog({
      path: "-",
      queries: true,
      maxQueryLength: 4096,
      redactLiterals: false,
      ...settings,
    }, writer);
    const proxy = await startTestProxy(cluster, {
      auditor: audit,
      policy: parsePolicy({ rules: [{ name: "no-md5", deny: { user: "md5_user" } }] }),
    });
    proxies.push(proxy);
    return {
      proxy,
      writer,
      audit,
      login: { host: "127.0.0.1", port: proxy.address.port, ...cluster.users.scram, database: "app" },
    };
  };
  /** Waits until the session's session_end is in the log. */
  const ended = async (writer: MemoryWriter, audit: AuditLog, count: number) => {
    const deadline = Date.now() + 5000;
    while (writer.events().filter((e) => e.event === "session_end").length < count) {
      if (Date.now() > deadline) throw new Error(`no session_end yet:\n${writer.text}`);
      await sleep(20);
      await audit.flush();
    }
  };

  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await cluster?.stop();
  });

  it("simple, multi-statement and failed queries from psql", async () => {
    const { writer, audit, login } = await start();
    const result = await runPsql([
      "-c",
      "select 1 as a",
      "-c",
      "select 2; select 3 from generate_series(1, 4)",
      "-c",
      "select 1/0",
    ], login);
    assert.equal(result.code, 1, "the last command fails");
    await ended(writer, audit, 1);
    const events = writer.events();
    assert.deepEqual(events.map((e) => e.event), ["session_start", "query", "query", "query", "session_end"]);
    const [first, one, multi, failed, end] = events;
    for (const event of events) {
      assert.equal(event.session, first!.session);
      assert.match(event.client, /^127\.0\.0\.1:\d+$/);
      assert.ok(Math.abs(Date.parse(event.ts) - Date.now()) < 60_000);
    }
    assert.deepEqual(
      [
        first!.user,
        first!.database,
        first!.application_name,
        first!.tls,
        first!.upstream,
        first!.decision,
        first!.rule,
      ],
      ["scram_user", "app", "psql", false, `127.0.0.1:${cluster.port}`, "allow", "default"],
    );
    assert.deepEqual([one!.protocol, one!.text, one!.tag, one!.rows], [
      "simple",
      "select 1 as a",
      "SELECT 1",
      1,
    ]);
    assert.ok(one!.duration_ms >= 0 && one!.duration_ms < 5000);
    assert.deepEqual(multi!.commands, [{ tag: "SELECT 1", rows: 1 }, { tag: "SELECT 4", rows: 4 }]);
    assert.deepEqual([multi!.tag, multi!.rows], ["SELECT 4", 4]);
    assert.deepEqual([failed!.text, failed!.sqlstate, failed!.tag], ["select 1/0", "22012", undefined]);
    assert.equal(end!.reason, "client_closed");
    assert.equal(end!.queries, 3);
    assert.ok(end!.bytes_from_client > 50 && end!.bytes_from_server > 300, JSON.stringify(end));
    assert.ok(end!.duration_ms >= 0);
  });

  it("npm pg prepared statements: statement name, text, execution count; parameter values never logged", async () => {
    const { writer, audit, login } = await start();
    const client = new pg.Client(login);
    await client.connect();
    const byValue = { name: "echo_value", text: "select $1::text as v, length($1::text) as n" };
    assert.equal((await client.query({ ...byValue, values: [SECRET] })).rows[0].v, SECRET);
    assert.equal((await client.query({ ...byValue, values: [SECRET + "-2"] })).rows[0].n, SECRET.length + 2);
    await client.query("select $1::int + 1 as x", [987654321]);
    await assert.rejects(
      client.query("select $1::int", [SECRET + "-not-an-int"]),
      (error: Error & { code?: string }) => error.code === "22P02",
    );
    await client.end();
    await ended(writer, audit, 1);
    const queries = writer.events().filter((e) => e.event === "query");
    assert.deepEqual(queries.map((e) => [e.protocol, e.statement, e.text, e.execution, e.tag, e.sqlstate]), [
      ["extended", "echo_value", byValue.text, 1, "SELECT 1", undefined],
      ["extended", "echo_value", byValue.text, 2, "SELECT 1", undefined],
      ["extended", "", "select $1::int + 1 as x", 1, "SELECT 1", undefined],
      ["extended", "", "select $1::int", 1, undefined, "22P02"],
    ]);
    assert.ok(!writer.text.includes(SECRET), "no parameter value, not even from an error message");
    assert.ok(!writer.text.includes("987654321"), "no parameter value");
  });

  it("a query cancelled through pgrelay (postgres.js cancel) is logged with 57014", async () => {
    const { writer, audit, login } = await start();
    const sql = postgres({ ...login, username: login.user, max: 1, onnotice: () => {} });
    try {
      const running = sql`select pg_sleep(10)`;
      const failure = running.then(() => "finished", (error: Error & { code?: string }) => error.code);
      await sleep(300);
      running.cancel();
      assert.equal(await failure, "57014");
    } finally {
      await sql.end();
    }
    await ended(writer, audit, 1);
    const sleepQuery = writer.events().find((e) =>
      e.event === "query" && String(e.text).includes("pg_sleep")
    );
    assert.ok(sleepQuery, writer.text);
    assert.equal(sleepQuery.sqlstate, "57014");
    assert.ok(
      sleepQuery.duration_ms >= 50 && sleepQuery.duration_ms < 5000,
      `duration ${sleepQuery.duration_ms}`,
    );
  });

  it("denied and auth_failed events; redact_literals masks literals; queries: false logs sessions only", async () => {
    const { writer, audit, login } = await start({ redactLiterals: true, maxQueryLength: 40 });
    assert.equal((await runPsql(["-c", "select 1"], { ...login, ...cluster.users.md5 })).code, 2);
    assert.equal((await runPsql(["-c", "select 1"], { ...login, password: "wrong" })).code, 2);
    const ok = await runPsql([
      "-c",
      "select 'topsecret' as a, 31337 as b, $$dollar secret$$ as c, 'x' || repeat('y', 100) as d",
    ], login);
    assert.equal(ok.code, 0, ok.stderr);
    await ended(writer, audit, 2);
    const events = writer.events();
    const denied = events.find((e) => e.event === "denied")!;
    assert.deepEqual([denied.user, denied.decision, denied.kind, denied.rule, denied.sqlstate], [
      "md5_user",
      "deny",
      "denied",
      "no-md5",
      "28000",
    ]);
    assert.match(denied.client, /^127\.0\.0\.1:\d+$/);
    const failed = events.find((e) => e.event === "auth_failed")!;
    assert.deepEqual([failed.user, failed.sqlstate], ["scram_user", "28P01"]);
    const query = events.find((e) => e.event === "query")!;
    assert.equal(
      query.text,
      "select ? as a, ? as b, ? as c, ? || repe",
      "redacted, then cut to 40 characters",
    );
    assert.equal(query.text_truncated, true);
    assert.doesNotMatch(writer.text, /topsecret|31337|dollar secret/);

    const quiet = await start({ queries: false });
    assert.equal((await runPsql(["-c", "select 'not logged'"], quiet.login)).code, 0);
    await ended(quiet.writer, quiet.audit, 1);
    assert.deepEqual(quiet.writer.events().map((e) => e.event), ["session_start", "session_end"]);
  });

  it("FunctionCall (psql \\lo_import): one event per call with the function's OID, never its arguments", async () => {
    const { writer, audit, login } = await start();
    const dir = mkdtempSync(join(tmpdir(), "pgrelay-lo-"));
    const file = join(dir, "blob.txt");
    writeFileSync(file, `${SECRET} in a large object\n`);
    try {
      const result = await runPsql(["-c", `\\lo_import ${file}`], login);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /lo_import \d+/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await ended(writer, audit, 1);
    const calls = writer.events().filter((e) => e.event === "query" && e.protocol === "function_call");
    const oids = await runPsql([
      "-At",
      "-c",
      "select string_agg(oid::text || '=' || proname, ',') from pg_proc where proname in ('lo_open', 'lowrite', 'lo_close', 'lo_creat', 'lo_create')",
    ], login);
    const names = new Map(oids.stdout.trim().split(",").map((pair) => pair.split("=") as [string, string]));
    const called = calls.map((e) => names.get(String(e.function_oid)));
    assert.ok(called.includes("lowrite") && called.includes("lo_open") && called.includes("lo_close"), JSON.stringify(calls));
    for (const call of calls) {
      assert.equal(call.text, undefined);
      assert.equal(typeof call.duration_ms, "number");
      assert.equal(call.sqlstate, undefined);
    }
    assert.ok(!writer.text.includes(SECRET), "the data written through lowrite is not in the log");
  });

  it("a stalled audit sink never blocks the relay: events are dropped and counted in the metric", async () => {
    let inFlight = 0;
    const stalled: AuditWriter = {
      write: (chunks) => {
        inFlight += textOf(chunks).split("\n").filter((line) => line !== "").length;
        return new Promise<void>(() => {}); // a disk that never answers
      },
      reopen: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const metrics = new ProxyMetrics();
    const audit = new AuditLog(
      { path: "-", queries: true, maxQueryLength: 4096, redactLiterals: false },
      stalled,
      { metrics, maxQueuedEvents: 10 },
    );
    const proxy = await startTestProxy(cluster, { auditor: audit });
    proxies.push(proxy);
    const client = new pg.Client({
      host: "127.0.0.1",
      port: proxy.address.port,
      ...cluster.users.scram,
      database: "app",
    });
    await client.connect();
    const started = performance.now();
    for (let i = 0; i < 50; i++) assert.equal((await client.query("select $1::int as i", [i])).rows[0].i, i);
    await client.end();
    assert.ok(performance.now() - started < 10_000);
    await sleep(100);
    // 52 events (session_start, 50 queries, session_end): the first batch went into the stalled write, at
    // most 10 wait in the queue (none, when every event came before the first write took the queue), and
    // every other one is dropped and counted.
    assert.ok(inFlight >= 1 && inFlight <= 42, `${inFlight} events in the stalled write`);
    const queued = 52 - inFlight - audit.dropped;
    assert.ok(queued >= 0 && queued <= 10, `${inFlight} in the write, ${audit.dropped} dropped: ${queued} queued`);
    assert.ok(audit.dropped >= 52 - 10 - inFlight, `${audit.dropped} dropped`);
    const text = metrics.render({ sessions: [], bufferedBytes: 0, upstreamUp: 1, draining: false });
    assert.match(text, new RegExp(`^pgrelay_audit_events_dropped_total ${audit.dropped}$`, "m"));
  });
});
