import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MessageReader } from "../../src/core/message_reader.ts";
import { ProtocolError } from "../../src/protocol/protocol_error.ts";
import { query } from "../support/frontend_frames.ts";
import { MemorySocket } from "../support/memory_socket.ts";

const MAX_BODY = 1024;
/** What the reader may hold beyond one message (message_reader.ts READ_AHEAD_BYTES). */
const READ_AHEAD_BYTES = 65536;
const reader = () => {
  const socket = new MemorySocket();
  return { socket, reader: new MessageReader(socket, { maxBodyBytes: MAX_BODY, peer: "client" }) };
};

describe("MessageReader", () => {
  it("reads messages split at every byte and several in one chunk, and releases the rest", async () => {
    const { socket, reader: r } = reader();
    const one = query("select 1");
    for (const byte of one) socket.receive([byte]);
    const two = query("select 2");
    const withTail = new Uint8Array(2 * two.length + 3);
    withTail.set(two);
    withTail.set(two, two.length);
    withTail.set([1, 2, 3], 2 * two.length);
    socket.receive(withTail.subarray(0, 7));
    socket.receive(withTail.subarray(7));
    for (const sql of ["select 1", "select 2", "select 2"]) {
      const message = await r.next(1000);
      assert.equal(String.fromCharCode(message.type), "Q");
      assert.equal(new TextDecoder().decode(message.body), `${sql}\0`);
    }
    assert.deepEqual([...r.release()], [1, 2, 3]);
    assert.equal(r.bufferedBytes, 0);
  });

  it("holds at most one message and READ_AHEAD_BYTES: a peer that sends more fails with a protocol error", async () => {
    const { socket, reader: r } = reader();
    const chunk = new Uint8Array(4096).fill(0x51); // 'Q' headers with absurd lengths never get read: nobody asks
    let sent = 0;
    while (sent < 64 * 1024 * 1024) {
      socket.receive(chunk);
      sent += chunk.length;
      assert.ok(r.bufferedBytes <= 5 + MAX_BODY + READ_AHEAD_BYTES, `holds ${r.bufferedBytes} bytes`);
    }
    await assert.rejects(r.next(1000), (error) => error instanceof ProtocolError && /sent more than \d+ bytes before pgrelay asked/.test(error.message));
    assert.equal(r.bufferedBytes, 0, "what it held is dropped");
  });

  it("a length over maxBodyBytes is a protocol error, not an allocation", async () => {
    const { socket, reader: r } = reader();
    socket.receive([0x70, 0x7f, 0xff, 0xff, 0xff]);
    await assert.rejects(r.next(1000), /invalid message from client: length 2147483647/);
  });
});
