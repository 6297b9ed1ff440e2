import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_TRACKER_LIMITS,
  NAMED_ENTRY_BYTES,
  type QueryEvent,
  QueryTracker,
  rowsOfTag,
  type TrackerLimits,
} from "../../src/audit/query_tracker.ts";
import type { AuditTrackingOverflow } from "../../src/core/metrics_sink.ts";
import { bind, close, execute, parse, query, sync } from "../support/frontend_frames.ts";

const encoder = new TextEncoder();
const body = (frame: Uint8Array) => frame.subarray(5);
const type = (frame: Uint8Array) => frame[0]!;
const tagBody = (tag: string) => encoder.encode(tag + "\0");
const errorBody = (code: string) => encoder.encode(`SERROR\0C${code}\0Mboom\0\0`);
const C = "C".charCodeAt(0);
const E = "E".charCodeAt(0);
const Z = "Z".charCodeAt(0);
const I = "I".charCodeAt(0);

function harness(limits: Partial<TrackerLimits> = {}) {
  const events: QueryEvent[] = [];
  const overflows: AuditTrackingOverflow[] = [];
  let now = 0;
  const tracker = new QueryTracker((event) => events.push(event), 40, () => now, {
    limits,
    overflowed: (what) => overflows.push(what),
  });
  const send = (...frames: Uint8Array[]) => frames.forEach((f) => tracker.frontend(type(f), body(f), false));
  const reply = (kind: number, payload = new Uint8Array()) => {
    tracker.backendFrame(kind);
    if (kind === C || kind === E || kind === Z) tracker.backend(kind, payload);
  };
  return { events, overflows, tracker, send, reply, advance: (ms: number) => now += ms };
}

describe("QueryTracker", () => {
  it("reports a multi-statement simple query once, with each command and the time to its last result", () => {
    const { events, send, reply, advance } = harness();
    send(query("select 1; insert into t values (1), (2)"));
    advance(5);
    reply(C, tagBody("SELECT 1"));
    advance(5);
    reply(C, tagBody("INSERT 0 2"));
    advance(100);
    reply(Z, encoder.encode("I"));
    assert.deepEqual(events, [{
      protocol: "simple",
      text: "select 1; insert into t values (1), (2)",
      duration_ms: 10,
      tag: "INSERT 0 2",
      rows: 2,
      commands: [{ tag: "SELECT 1", rows: 1 }, { tag: "INSERT 0 2", rows: 2 }],
    }]);
  });

  it("a failed simple query carries its SQLSTATE", () => {
    const { events, send, reply } = harness();
    send(query("select 1/0"));
    reply(E, errorBody("22012"));
    reply(Z, encoder.encode("I"));
    assert.equal(events[0]?.sqlstate, "22012");
    assert.equal(events[0]?.tag, undefined);
  });

  it("extended protocol: one event per Execute with the statement's name, text and execution count", () => {
    const { events, send, reply, advance } = harness();
    send(parse("by_id", "select * from t where id = $1"), bind("", "by_id", ["s3cr3t"]), execute(""), sync());
    advance(2);
    reply("1".charCodeAt(0));
    reply("2".charCodeAt(0));
    reply(C, tagBody("SELECT 1"));
    reply(Z, encoder.encode("I"));
    send(bind("p1", "by_id", ["other"]), execute("p1"), sync());
    reply(C, tagBody("SELECT 0"));
    reply(Z, encoder.encode("I"));
    assert.deepEqual(events.map((e) => [e.protocol, e.statement, e.text, e.execution, e.tag, e.rows]), [
      ["extended", "by_id", "select * from t where id = $1", 1, "SELECT 1", 1],
      ["extended", "by_id", "select * from t where id = $1", 2, "SELECT 0", 0],
    ]);
    assert.equal(events[0]?.duration_ms, 2);
    assert.ok(!JSON.stringify(events).includes("s3cr3t"), "Bind parameters are never read");
  });

  it("an error skips the Executes up to Sync; Close forgets a statement; an empty query completes", () => {
    const { events, send, reply } = harness();
    send(
      parse("", "select bad syntax"),
      bind("", "", []),
      execute(""),
      parse("", "select 2"),
      bind("", "", []),
      execute(""),
      sync(),
    );
    reply(E, errorBody("42601"));
    reply(Z, encoder.encode("I"));
    // The Execute ran the unnamed statement as parsed before it; the later Parse and Execute were skipped.
    assert.deepEqual(events.map((e) => [e.text, e.sqlstate]), [["select bad syntax", "42601"]]);
    send(parse("s", "select 3"), close("S", "s"), bind("", "s", []), execute(""), sync());
    reply(E, errorBody("26000"));
    reply(Z, encoder.encode("I"));
    assert.deepEqual([events[1]?.text, events[1]?.sqlstate, events[1]?.execution], ["", "26000", 0]);
    send(query(""));
    reply(I);
    reply(Z, encoder.encode("I"));
    assert.deepEqual([events[2]?.protocol, events[2]?.text, events[2]?.tag], ["simple", "", undefined]);
  });

  it("keeps at most the configured characters of text", () => {
    const { events, send, reply } = harness();
    send(parse("long", "select " + "x, ".repeat(100) + "1"), bind("", "long", []), execute(""), sync());
    reply(C, tagBody("SELECT 1"));
    reply(Z, encoder.encode("I"));
    assert.equal(events[0]?.text, "select x, x, x, x, x, x, x, x, x, x, x, ");
    assert.equal(events[0]?.text_truncated, true);
  });

  it("a FunctionCall is one event with the function's OID, timed to its ReadyForQuery, with its SQLSTATE on error", () => {
    const { events, tracker, reply, advance } = harness();
    const F = "F".charCodeAt(0);
    const V = "V".charCodeAt(0);
    const call = (oid: number) => {
      const body = new Uint8Array(4 + 2 + 2 + 4 + 3 + 2);
      new DataView(body.buffer).setUint32(0, oid);
      tracker.frontend(F, body, false);
    };
    call(952);
    advance(3);
    tracker.backendFrame(V);
    reply(Z, encoder.encode("T"));
    call(4294967295);
    reply(E, errorBody("42883"));
    reply(Z, encoder.encode("E"));
    assert.deepEqual(events, [
      { protocol: "function_call", function_oid: 952, duration_ms: 3 },
      { protocol: "function_call", function_oid: 4294967295, duration_ms: 0, sqlstate: "42883" },
    ]);
  });

  it("rowsOfTag() reads the row count of the tags that have one", () => {
    assert.equal(rowsOfTag("SELECT 5"), 5);
    assert.equal(rowsOfTag("INSERT 0 7"), 7);
    assert.equal(rowsOfTag("UPDATE 3"), 3);
    assert.equal(rowsOfTag("COPY 10"), 10);
    assert.equal(rowsOfTag("BEGIN"), undefined);
    assert.equal(rowsOfTag("CREATE TABLE"), undefined);
    assert.equal(rowsOfTag("INSERT 7"), undefined, "INSERT's tag has the legacy OID first");
    assert.equal(rowsOfTag("MERGE 2"), 2);
    assert.equal(rowsOfTag("SELECT x"), undefined);
    assert.equal(rowsOfTag("SELECTED 5"), undefined);
  });

});

describe("QueryTracker caps", () => {
  it("portals and statements count entries and bytes, names included, against one budget; past it nothing more is kept", () => {
    const { events, overflows, tracker, send, reply } = harness({ maxNamedBytes: 64 * 1024 });
    const longName = "p".repeat(30 * 1024);
    send(parse("s", "select 1"));
    const statementName = "s".repeat(8000);
    for (let i = 0; i < 1000; i++) send(bind(`${i}${longName}`, "s", []), parse(`${i}${statementName}`, "select 2"));
    assert.ok(tracker.bytes <= 64 * 1024, `${tracker.bytes} bytes`);
    assert.ok(tracker.peakBytes <= 64 * 1024);
    assert.ok(tracker.entries <= 8, `${tracker.entries} entries: two 30 KB names do not fit`);
    assert.ok(overflows.filter((what) => what === "portals").length >= 998);
    assert.ok(overflows.filter((what) => what === "statements").length >= 990);
    // An Execute of a portal that was not kept logs no statement text, and says so.
    send(execute(`7${longName}`), sync());
    reply(C, tagBody("SELECT 1"));
    reply(Z, encoder.encode("E"));
    assert.deepEqual(events.map((e) => [e.statement, e.text, e.text_truncated]), [["", "", true]]);
    // A portal kept runs its statement.
    send(execute(`0${longName}`), sync());
    reply(C, tagBody("SELECT 1"));
    reply(Z, encoder.encode("E"));
    assert.deepEqual(events.map((e) => [e.statement, e.text]).at(-1), ["s", "select 1"]);
  });

  it("caps the number of statements and portals, and Close gives their room back", () => {
    const { overflows, tracker, send } = harness({ maxNamed: 3 });
    send(parse("a", "select 1"), parse("b", "select 1"), bind("p", "a", []), parse("c", "select 1"));
    assert.deepEqual(overflows, ["statements"]);
    send(close("S", "a"), parse("c", "select 1"));
    assert.equal(tracker.entries, 3);
    assert.deepEqual(overflows, ["statements"]);
    const bytes = tracker.bytes;
    send(close("P", "p"));
    assert.equal(tracker.bytes, bytes - NAMED_ENTRY_BYTES - "p\0a\0".length);
  });

  it("forgets every portal at a ReadyForQuery that reports idle (the server dropped them with the transaction)", () => {
    const { tracker, send, reply } = harness();
    send(parse("s", "select 1"));
    const withStatement = tracker.bytes;
    send(bind("p1", "s", []), bind("p2", "s", []), sync());
    reply(Z, encoder.encode("T"));
    assert.equal(tracker.entries, 3, "inside a transaction the portals live on");
    send(sync());
    reply(Z, encoder.encode("I"));
    assert.equal(tracker.entries, 1, "the statement is kept");
    assert.equal(tracker.bytes, withStatement);
  });

  it("tracks at most maxPending requests; past it nothing is queued until a ReadyForQuery answers every request sent", () => {
    const { events, overflows, tracker, send, reply } = harness({ maxPending: 8 });
    send(parse("", "select 1/0"));
    for (let i = 0; i < 100_000; i++) send(execute(""));
    send(sync());
    assert.equal(tracker.peakEntries, 1 + 8, "the statement and 8 requests");
    assert.equal(overflows.length, 100_001 - 8);
    reply(E, errorBody("42703"));
    reply(Z, encoder.encode("I"));
    assert.equal(events.length, 1, "the failed Execute");
    assert.equal(tracker.entries, 1, "only the statement is left");
    send(query("select 2"));
    reply(C, tagBody("SELECT 1"));
    reply(Z, encoder.encode("I"));
    assert.deepEqual(events.at(-1)!.text, "select 2", "tracking resumed");
  });

  it("holds at most maxPendingBytes of simple query text", () => {
    const { overflows, tracker, send } = harness({ maxPendingBytes: 4096 });
    for (let i = 0; i < 100; i++) send(query("select " + "x".repeat(30)));
    assert.ok(tracker.bytes <= 4096, `${tracker.bytes} bytes`);
    assert.ok(overflows.length > 50);
  });

  it("keeps at most maxCommands results of a multi-statement query and marks the event", () => {
    const { events, overflows, send, reply } = harness({ maxCommands: 3 });
    send(query("select 1; select 1; select 1; select 1; select 1"));
    for (let i = 0; i < 5; i++) reply(C, tagBody("SELECT 1"));
    reply(Z, encoder.encode("I"));
    assert.equal(events[0]!.commands!.length, 3);
    assert.equal(events[0]!.commands_truncated, true);
    assert.deepEqual(overflows, ["commands"]);
  });

  it("has per-session defaults: 1024 requests, 10,000 statements and portals, a few MiB", () => {
    assert.equal(DEFAULT_TRACKER_LIMITS.maxPending, 1024);
    assert.equal(DEFAULT_TRACKER_LIMITS.maxNamed, 10_000);
    assert.ok(DEFAULT_TRACKER_LIMITS.maxNamedBytes + DEFAULT_TRACKER_LIMITS.maxPendingBytes <= 8 << 20);
  });
});
