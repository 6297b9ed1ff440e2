import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bindStatementEnd, bindStatementStart, decodeBindNames, encodeBind, encodeBindHead } from "../../src/protocol/bind_message.ts";
import { CLOSE_COMPLETE_FRAME, encodeCloseComplete } from "../../src/protocol/close_complete.ts";
import { decodeClose, encodeClose } from "../../src/protocol/close_message.ts";
import { decodeDescribe, encodeDescribe, TARGET } from "../../src/protocol/describe_message.ts";
import { encodeParseComplete, PARSE_COMPLETE_FRAME } from "../../src/protocol/parse_complete.ts";
import { decodeParse, encodeParse, renameParse } from "../../src/protocol/parse_message.ts";
import { ProtocolError } from "../../src/protocol/protocol_error.ts";
import * as frontend from "../support/frontend_frames.ts";

/** The body of a whole frame, at a non-zero offset of a larger buffer (DataView offsets must be right). */
function bodyAtOffset(frame: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(frame.length + 7);
  buffer.set(frame, 7);
  return buffer.subarray(12, 7 + frame.length);
}

describe("extended-protocol messages", () => {
  it("encodeParse() matches the protocol byte for byte, and decodeParse() reads it back", () => {
    const frame = encodeParse("s1", "SELECT $1::int", [23]);
    assert.deepEqual(frame, frontend.parse("s1", "SELECT $1::int", [23]));
    assert.deepEqual([...frame.subarray(0, 5)], [0x50, 0, 0, 0, 4 + 3 + 15 + 2 + 4]);
    assert.deepEqual(decodeParse(bodyAtOffset(frame)), { statement: "s1", query: "SELECT $1::int", parameterTypes: [23] });
    assert.deepEqual(decodeParse(bodyAtOffset(encodeParse("", "SELECT 1"))), { statement: "", query: "SELECT 1", parameterTypes: [] });
    // OIDs above 2^31 stay unsigned
    assert.deepEqual(decodeParse(encodeParse("x", "q", [0xffff_fff0]).subarray(5)).parameterTypes, [0xffff_fff0]);
  });

  it("renameParse() renames a Parse keeping its query and types", () => {
    const body = frontend.parse("mine", "SELECT 2", [25]).subarray(5);
    const rest = body.subarray(body.indexOf(0) + 1);
    assert.deepEqual(renameParse(rest, new TextEncoder().encode("pgrelay_7\0")), frontend.parse("pgrelay_7", "SELECT 2", [25]));
  });

  it("decodeParse() refuses malformed bodies with ProtocolError", () => {
    assert.throws(() => decodeParse(Uint8Array.of(0x61)), ProtocolError);
    assert.throws(() => decodeParse(Uint8Array.of(0x61, 0, 0x62, 0, 0, 1)), ProtocolError); // 1 type, no bytes
  });

  it("encodeBind() matches the protocol; the head of a Bind can be renamed without its parameters", () => {
    const frame = encodeBind("p", "s1", ["42", null]);
    assert.deepEqual(frame, frontend.bind("p", "s1", ["42", null]));
    const body = bodyAtOffset(frame);
    assert.deepEqual(decodeBindNames(body), { portal: "p", statement: "s1" });
    const start = bindStatementStart(body);
    const end = bindStatementEnd(body, start);
    assert.deepEqual([start, end], [2, 4]);
    const head = encodeBindHead(body, body.length, start, end, new TextEncoder().encode("pgrelay_12\0"));
    const whole = new Uint8Array(head.length + body.length - (end + 1));
    whole.set(head);
    whole.set(body.subarray(end + 1), head.length);
    assert.deepEqual(whole, frontend.bind("p", "pgrelay_12", ["42", null]));
  });

  it("encodeBindHead() computes the new length from the whole body even when given only its head", () => {
    const frame = frontend.bind("", "s", ["x".repeat(1000)]);
    const body = frame.subarray(5);
    const head = encodeBindHead(body.subarray(0, 10), body.length, 1, 2, new TextEncoder().encode("pgrelay_1\0"));
    assert.equal(head[0], 0x42);
    const length = new DataView(head.buffer).getInt32(1);
    assert.equal(length, 4 + body.length - 2 + 10);
    assert.deepEqual([...head.subarray(5)], [0, ...new TextEncoder().encode("pgrelay_1"), 0]);
  });

  it("Describe and Close: encoders match the protocol, decoders read them back", () => {
    assert.deepEqual(encodeDescribe(TARGET.STATEMENT, "s1"), frontend.describe("S", "s1"));
    assert.deepEqual(encodeDescribe(TARGET.PORTAL, new TextEncoder().encode("p\0")), frontend.describe("P", "p"));
    assert.deepEqual(encodeClose(TARGET.STATEMENT, ""), frontend.close("S", ""));
    assert.deepEqual(decodeDescribe(bodyAtOffset(frontend.describe("S", "s1"))), { kind: TARGET.STATEMENT, name: "s1" });
    assert.deepEqual(decodeClose(bodyAtOffset(frontend.close("P", "cur"))), { kind: TARGET.PORTAL, name: "cur" });
    assert.throws(() => decodeClose(Uint8Array.of(0x58, 0)), ProtocolError);
    assert.throws(() => decodeDescribe(Uint8Array.of(0x53, 0x61)), ProtocolError);
  });

  it("ParseComplete and CloseComplete are type byte and length 4", () => {
    assert.deepEqual([...PARSE_COMPLETE_FRAME], [0x31, 0, 0, 0, 4]);
    assert.deepEqual([...CLOSE_COMPLETE_FRAME], [0x33, 0, 0, 0, 4]);
    assert.deepEqual(encodeParseComplete(), PARSE_COMPLETE_FRAME);
    assert.notEqual(encodeCloseComplete(), CLOSE_COMPLETE_FRAME);
  });
});
