import { ServerFacts } from "../../src/backend/server_facts.ts";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuditLog } from "../../src/audit/audit_log.ts";
import { MemoryAuditWriter as MemoryWriter } from "../support/memory_audit_writer.ts";
import { NO_METRICS } from "../../src/core/metrics_sink.ts";
import { SessionContext } from "../../src/core/session_context.ts";
import { query } from "../support/frontend_frames.ts";

const SETTINGS = { path: "-", queries: true, maxQueryLength: 20, redactLiterals: true };


const context = () => {
  const c = new SessionContext("abc-1", { hostname: "::1", port: 5555 });
  c.user = "alice";
  c.database = "app";
  c.upstream = { hostname: "127.0.0.1", port: 5432 };
  return c;
};

describe("AuditLog", () => {
  it("writes JSON lines with ts, event, session and client; redacts and cuts query text", async () => {
    const writer = new MemoryWriter();
    const log = new AuditLog(SETTINGS, writer);
    const session = log.begin(context(), "office")!;
    assert.deepEqual(session.frontendCaptures.map((t) => String.fromCharCode(t)), [
      "Q",
      "P",
      "B",
      "E",
      "C",
      "S",
      "F",
    ]);
    assert.equal(
      session.frontendCaptureBytes,
      20 * 4 * 4 + 256,
      "captures stop where (redacted) max_query_length does",
    );
    const q = query("select 'password123', 4711 from a_table_with_a_long_name");
    session.frontend(q[0]!, q.subarray(5), false);
    session.backend("C".charCodeAt(0), new TextEncoder().encode("SELECT 1\0"));
    session.backendFrame("Z".charCodeAt(0));
    session.ended("client_closed");
    await log.flush();
    const events = writer.lines.map((line) => JSON.parse(line));
    assert.deepEqual(events.map((e) => e.event), ["session_start", "query", "session_end"]);
    for (const event of events) {
      assert.match(event.ts, /^\d{4}-\d\d-\d\dT/);
      assert.equal(event.session, "abc-1");
      assert.equal(event.client, "[::1]:5555");
    }
    assert.deepEqual([events[0].rule, events[0].upstream, events[0].tls, events[0].decision], [
      "office",
      "127.0.0.1:5432",
      false,
      "allow",
    ]);
    assert.equal(events[1].text, "select ?, ? from a_t");
    assert.equal(events[1].text_truncated, true);
    assert.doesNotMatch(writer.lines.join("\n"), /password123|4711/);
    assert.equal(events[2].reason, "client_closed");
    assert.equal(events[2].queries, 1);
  });

  it("never waits for a slow writer: beyond the queue, events are dropped and counted", async () => {
    const writer = new MemoryWriter();
    let release!: () => void;
    writer.gate = new Promise((resolve) => release = resolve);
    const dropped: number[] = [];
    const log = new AuditLog({ ...SETTINGS, queries: false }, writer, {
      maxQueuedEvents: 5,
      metrics: { ...NO_METRICS, auditEventsDropped: (n) => dropped.push(n) },
    });
    const started = performance.now();
    for (let i = 0; i < 20; i++) log.begin(context(), "default");
    assert.ok(performance.now() - started < 50, "begin() returned at once");
    // 5 queue, the rest are dropped; then the 5 go into the stalled write and 5 more may queue.
    assert.equal(log.dropped, 15);
    await new Promise((resolve) => setTimeout(resolve, 40)); // past the batching delay: the 5 are in the stalled write
    for (let i = 0; i < 7; i++) log.begin(context(), "default");
    assert.equal(log.dropped, 17);
    assert.equal(dropped.reduce((a, b) => a + b, 0), 17);
    release();
    await log.flush();
    assert.equal(writer.lines.length, 10);
    assert.equal(log.written, 10);
  });

  it("holds at most maxQueuedBytes of lines for a stalled writer (long queries), then drops and counts", async () => {
    const writer = new MemoryWriter();
    let release = () => {};
    writer.gate = new Promise((resolve) => release = resolve);
    const log = new AuditLog({ ...SETTINGS, maxQueryLength: 100_000, redactLiterals: false }, writer, {
      maxQueuedBytes: 64 * 1024,
    });
    const session = log.begin(context(), "default")!;
    void log.flush(); // starts the write of session_start, which stalls
    const long = query("select '" + "x".repeat(10_000) + "'");
    for (let i = 0; i < 20; i++) {
      session.frontend(long[0]!, long.subarray(5), false);
      session.backendFrame("Z".charCodeAt(0));
    }
    const flushed = log.flush();
    assert.ok(log.dropped >= 12 && log.dropped <= 14, `about 64 KiB of 10 KB lines were kept, the rest dropped (${log.dropped})`);
    release();
    await flushed;
    assert.equal(writer.lines.length, 1 + 20 - log.dropped);
  });

  it("redacts with the session's standard_conforming_strings (ParameterStatus): once off, \\ may escape", async () => {
    const writer = new MemoryWriter();
    const log = new AuditLog({ ...SETTINGS, maxQueryLength: 200 }, writer);
    const session = context();
    session.server = new ServerFacts({ hostname: "127.0.0.1", port: 5432 });
    session.server.parameters.set("standard_conforming_strings", "off");
    const audit = log.begin(session, "default")!;
    const q = query("select 'a\\' , secret_column_value, ' as c from t");
    audit.frontend(q[0]!, q.subarray(5), false);
    audit.backend("C".charCodeAt(0), new TextEncoder().encode("SELECT 1\0"));
    audit.backendFrame("Z".charCodeAt(0));
    await log.flush();
    const event = writer.lines.map((line) => JSON.parse(line)).find((e) => e.event === "query");
    // Read with standard_conforming_strings off, 'a\' , secret_column_value, ' is one literal; read with it
    // on, ' as c from t is an unterminated one: both are masked.
    assert.equal(event.text, "select ?");
    assert.doesNotMatch(writer.lines.join("\n"), /secret_column_value/);
  });

  it("is off for new sessions when configured without settings", () => {
    const log = new AuditLog(undefined, undefined);
    assert.equal(log.begin(context(), "default"), undefined);
  });

  it("a reload that turns audit off silences sessions begun before it without counting drops", async () => {
    const writer = new MemoryWriter();
    const log = new AuditLog(SETTINGS, writer);
    const session = log.begin(context(), "default")!;
    await log.flush();
    log.configure(undefined, undefined);
    session.ended("client_closed");
    await log.flush();
    assert.deepEqual(writer.lines.map((line) => JSON.parse(line).event), ["session_start"]);
    assert.equal(log.dropped, 0);
    assert.equal(log.begin(context(), "default"), undefined);
  });
});
