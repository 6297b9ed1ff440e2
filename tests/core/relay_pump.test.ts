import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RelayPump } from "../../src/core/relay_pump.ts";
import { FrameScanner } from "../../src/protocol/frame_scanner.ts";
import { MemorySocket } from "../support/memory_socket.ts";

const dataRow = (size: number) => {
  const frame = new Uint8Array(size);
  frame[0] = "D".charCodeAt(0);
  new DataView(frame.buffer).setInt32(1, size - 1);
  return frame;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("RelayPump bandwidth cap", () => {
  it("pauses the source for as long as the budget needs, then resumes; writes are not held back", async () => {
    const from = new MemorySocket();
    const to = new MemorySocket();
    const scanner = new FrameScanner({ frame() {}, message() {} }, {
      capture: [],
      maxBodyBytes: 1 << 20,
      peer: "server",
    });
    const pump = new RelayPump(from, to, scanner, () => assert.fail("no protocol error"), {
      bytes: 0,
      stalls: 0,
      stallSeconds: 0,
    }, 100_000);
    pump.forward(dataRow(60_000));
    assert.equal(from.paused, false, "within the first second's budget");
    pump.forward(dataRow(60_000)); // 20 000 bytes over: 200 ms at 100 kB/s
    assert.equal(from.paused, true);
    assert.equal(pump.throttled, true);
    assert.equal(to.written.length, 2, "the chunk already read is written, not buffered");
    await sleep(120);
    assert.equal(from.paused, true, "still paused after 120 ms");
    await sleep(150);
    assert.equal(from.paused, false, "resumed after about 200 ms");
    assert.equal(pump.throttled, false);
  });

  it("stays paused while the destination is backed up even when the budget recovers", async () => {
    const from = new MemorySocket();
    const to = new MemorySocket();
    to.congested = true;
    const scanner = new FrameScanner({ frame() {}, message() {} }, {
      capture: [],
      maxBodyBytes: 1 << 20,
      peer: "server",
    });
    const pump = new RelayPump(from, to, scanner, () => {}, { bytes: 0, stalls: 0, stallSeconds: 0 }, 10_000);
    pump.forward(dataRow(11_000)); // 100 ms over budget, and the write queued
    await sleep(150);
    assert.equal(from.paused, true, "the drain has not come");
    to.drain();
    pump.drained(); // what the session's drain handler does
    assert.equal(from.paused, false);
    pump.dispose();
  });
});
