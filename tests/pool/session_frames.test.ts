import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SessionState } from "../../src/pool/session_state.ts";
import { trackClientMessage, trackServerMessage } from "../../src/pool/session_frames.ts";
import * as frontend from "../support/frontend_frames.ts";

const encoder = new TextEncoder();

/** A backend message body inside a larger buffer, so that it does not start at offset 0. */
function body(...parts: Array<string | number>): Uint8Array {
  const bytes: number[] = [0xee, 0xee, 0xee];
  for (const part of parts) {
    if (typeof part === "number") bytes.push(part);
    else bytes.push(...encoder.encode(part), 0);
  }
  return new Uint8Array(bytes).subarray(3);
}

const client = (state: SessionState, frame: Uint8Array) =>
  trackClientMessage(state, frame[0]!, frame.subarray(5));
const server = (state: SessionState, type: string, payload: Uint8Array) =>
  trackServerMessage(state, type.charCodeAt(0), payload);

describe("trackClientMessage() / trackServerMessage()", () => {
  it("a simple Query and its replies update the state", () => {
    const state = new SessionState();
    client(state, frontend.query("SET work_mem = '4MB'; LISTEN ch"));
    server(state, "C", body("SET"));
    server(state, "N", body("ignored"));
    server(state, "C", body("LISTEN"));
    server(state, "S", body("TimeZone", "UTC"));
    server(state, "Z", body(0x49));
    assert.equal(state.settings.get("work_mem"), "4MB");
    assert.equal(state.pinned, "listen");
    assert.equal(state.reported.get("timezone"), "UTC");
  });

  it("Parse, Bind, Execute, Sync; Close of the statement forgets it", () => {
    const state = new SessionState();
    client(state, frontend.parse("s", "PREPARE p AS SELECT 1"));
    client(state, frontend.bind("", "s", []));
    client(state, frontend.execute(""));
    client(state, frontend.sync());
    server(state, "1", body());
    server(state, "2", body());
    server(state, "C", body("PREPARE"));
    server(state, "Z", body(0x49));
    assert.equal(state.pinned, "sql_prepare");
    client(state, frontend.close("S", "s"));
    client(state, frontend.bind("", "s", [])); // the server would refuse it; nothing is run again
    client(state, frontend.execute(""));
    client(state, frontend.sync());
    server(state, "E", body(0x53, "ERROR", 0x43, "26000", 0x4d, 'prepared statement "s" does not exist'));
    server(state, "Z", body(0x49));
    assert.deepEqual(state.pinReasons, ["sql_prepare"]);
  });

  it("an error and the failed transaction status", () => {
    const state = new SessionState();
    client(state, frontend.query("BEGIN; SET a.b = 1"));
    server(state, "C", body("BEGIN"));
    server(state, "C", body("SET"));
    server(state, "Z", body(0x54));
    client(state, frontend.query("SELECT 1/0"));
    server(state, "E", body(0x43, "22012"));
    server(state, "Z", body(0x45));
    client(state, frontend.query("COMMIT"));
    server(state, "C", body("ROLLBACK"));
    server(state, "Z", body(0x49));
    assert.equal(state.settings.size, 0);
    assert.equal(state.inTransaction, false);
  });
});
