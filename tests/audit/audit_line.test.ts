import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { eventLine, queryLine, sessionMembers, timestamp } from "../../src/audit/audit_line.ts";
import type { QueryEvent } from "../../src/audit/query_tracker.ts";

const members = sessionMembers("abc-1", "[::1]:5555");

/** What the hand-built line must equal: the plain JSON.stringify of the same members. */
const reference = (line: string, event: QueryEvent) => ({
  ts: JSON.parse(line).ts,
  event: "query",
  session: "abc-1",
  client: "[::1]:5555",
  ...event,
});

describe("audit lines", () => {
  it("a query line is the JSON of its event, for every optional member and awkward text", () => {
    const events: QueryEvent[] = [
      { protocol: "simple", text: "select 1", duration_ms: 0.125, tag: "SELECT 1", rows: 1 },
      {
        protocol: "simple",
        text: 'select "q", \'\\n\'\n\t\u0001 ünïcødé 😀',
        text_truncated: true,
        duration_ms: 12,
        tag: "INSERT 0 2",
        rows: 2,
        commands: [{ tag: "SELECT 1", rows: 1 }, { tag: "INSERT 0 2", rows: 2 }],
      },
      { protocol: "extended", statement: 's"1', text: "select $1", execution: 3, duration_ms: 1.5, sqlstate: "22012" },
      { protocol: "extended", statement: "", text: "", execution: 0, duration_ms: 0, tag: "" },
      { protocol: "function_call", function_oid: 952, duration_ms: 0.5, sqlstate: "42883" },
    ];
    for (const event of events) {
      const line = queryLine(members, event, Date.UTC(2026, 10, 24, 1, 2, 3, 456.7));
      assert.deepEqual(JSON.parse(line), reference(line, event));
      assert.match(line, /^\{"ts":"2026-11-24T01:02:03\.456Z","event":"query","session":"abc-1",/);
    }
  });

  it("other events carry ts, event, session and client first, and leave undefined fields out", () => {
    const line = eventLine("session_end", members, { reason: "client_closed", queries: undefined, bytes: 7 });
    assert.deepEqual(Object.keys(JSON.parse(line)), ["ts", "event", "session", "client", "reason", "bytes"]);
    assert.equal(JSON.parse(eventLine("denied", members, {})).event, "denied");
  });

  it("the timestamp is the current time, to the millisecond", () => {
    const before = Date.now();
    const stamp = Date.parse(timestamp());
    assert.ok(stamp >= before && stamp <= Date.now(), `${stamp} within [${before}, now]`);
  });
});
