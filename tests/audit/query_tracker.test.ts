import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type QueryEvent, QueryTracker, rowsOfTag } from "../../src/audit/query_tracker.ts";
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

function harness() {
  const events: QueryEvent[] = [];
  let now = 0;
  const tracker = new QueryTracker((event) => events.push(event), 40, () => now);
  const send = (...frames: Uint8Array[]) => frames.forEach((f) => tracker.frontend(type(f), body(f), false));
  const reply = (kind: number, payload = new Uint8Array()) => {
    tracker.backendFrame(kind);
    if (kind === C || kind === E || kind === Z) tracker.backend(kind, payload);
  };
  return { events, tracker, send, reply, advance: (ms: number) => now += ms };
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
