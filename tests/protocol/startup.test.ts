import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeStartupPacket } from "../../src/protocol/startup.ts";
import { StartupReader } from "../../src/protocol/startup_reader.ts";
import { ProtocolError } from "../../src/protocol/protocol_error.ts";

const packet = (code: number, payload: Uint8Array = new Uint8Array()): Uint8Array => {
  const bytes = new Uint8Array(8 + payload.length);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, bytes.length);
  view.setInt32(4, code);
  bytes.set(payload, 8);
  return bytes;
};
const params = (text: string) => new TextEncoder().encode(text);

describe("decodeStartupPacket()", () => {
  it("recognises SSLRequest, GSSENCRequest and CancelRequest", () => {
    assert.deepEqual(decodeStartupPacket(packet(80877103)), { kind: "ssl_request" });
    assert.deepEqual(decodeStartupPacket(packet(80877104)), { kind: "gssenc_request" });
    const cancel = decodeStartupPacket(packet(80877102, new Uint8Array([0, 0, 0x30, 0x39, 1, 2, 3, 4])));
    assert.equal(cancel.kind, "cancel_request");
    assert.equal(cancel.kind === "cancel_request" && cancel.processId, 12345);
    assert.deepEqual(cancel.kind === "cancel_request" && [...cancel.secretKey], [1, 2, 3, 4]);
  });

  it("accepts a protocol 3.2 cancel key longer than 4 bytes", () => {
    const cancel = decodeStartupPacket(packet(80877102, new Uint8Array([0, 0, 0, 7, ...new Array(32).fill(9)])));
    assert.equal(cancel.kind === "cancel_request" && cancel.secretKey.length, 32);
  });

  it("reads the parameters of a StartupMessage", () => {
    const decoded = decodeStartupPacket(packet(196608, params("user\0alice\0database\0app\0application_name\0\0\0")));
    assert.equal(decoded.kind, "startup");
    if (decoded.kind !== "startup") return;
    assert.equal(decoded.minor, 0);
    assert.deepEqual(Object.fromEntries(decoded.parameters), { user: "alice", database: "app", application_name: "" });
  });

  it("accepts protocol 3.2 and reports its minor version", () => {
    const decoded = decodeStartupPacket(packet(196610, params("user\0bob\0\0")));
    assert.equal(decoded.kind === "startup" && decoded.minor, 2);
  });

  it("refuses a layout without the final terminator, or with a key missing its value", () => {
    assert.throws(() => decodeStartupPacket(packet(196608, params("user\0alice\0"))), /expected terminator/);
    assert.throws(() => decodeStartupPacket(packet(196608, params("user\0\0\0garbage"))), /expected terminator/);
  });

  it("refuses protocol 2 with SQLSTATE 0A000", () => {
    assert.throws(() => decodeStartupPacket(packet(2 << 16)), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.sqlstate, "0A000");
      assert.match(error.message, /unsupported frontend protocol 2\.0/);
      return true;
    });
  });
});

describe("StartupReader", () => {
  it("collects a packet delivered one byte at a time and returns the bytes after it", () => {
    const reader = new StartupReader();
    const first = packet(80877103);
    const stream = new Uint8Array([...first, 0x51, 0x52]);
    let read = null;
    for (let i = 0; i < first.length - 1; i++) assert.equal(reader.push(stream.subarray(i, i + 1)), null);
    read = reader.push(stream.subarray(first.length - 1));
    assert.ok(read);
    assert.deepEqual([...read.packet], [...first]);
    assert.deepEqual([...read.rest], [0x51, 0x52]);
  });

  it("rejects a length over 10000 or under 8 as soon as the length word is in", () => {
    assert.throws(() => new StartupReader().push(new Uint8Array([0, 0, 0x4e, 0x20])), /invalid length of startup packet: 20000/);
    assert.throws(() => new StartupReader().push(new Uint8Array([0, 0, 0, 4, 0])), /invalid length of startup packet: 4/);
    assert.throws(() => new StartupReader().push(new Uint8Array([0x7f, 0xff, 0xff, 0xff])), /2147483647/);
  });

  it("allocates nothing before the length word and then only the announced length", () => {
    const reader = new StartupReader();
    assert.equal(reader.allocatedBytes, 0, "a reader waiting for its first byte holds no packet buffer");
    const ssl = packet(80877103);
    assert.equal(reader.push(ssl.subarray(0, 3)), null);
    assert.equal(reader.allocatedBytes, 0, "three bytes of a length word allocate nothing");
    assert.equal(reader.push(ssl.subarray(3, 5)), null);
    assert.equal(reader.allocatedBytes, 8, "an 8-byte SSLRequest takes 8 bytes");
    assert.ok(reader.push(ssl.subarray(5)));
    assert.equal(reader.allocatedBytes, 0, "the packet goes to the caller; the reader keeps nothing");
    // A client announcing 9000 bytes and sending 10 costs 9000 bytes, never more than the 10000-byte cap.
    const big = new Uint8Array([0, 0, 0x23, 0x28, 0, 3, 0, 0, 0x75, 0x73]);
    assert.equal(reader.push(big), null);
    assert.equal(reader.allocatedBytes, 9000);
  });
});
