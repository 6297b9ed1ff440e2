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

describe("RelayPump time slices", () => {
  const execute = new Uint8Array([0x45, 0, 0, 0, 9, 0, 0, 0, 0, 0]); // Execute of the unnamed portal

  it("scans a chunk of 100,000 tiny frames in slices: the source is paused meanwhile, every byte goes out in order", async () => {
    const from = new MemorySocket();
    const to = new MemorySocket();
    let frames = 0;
    const scanner = new FrameScanner({
      frame() {
        frames++;
        const until = performance.now() + 0.002; // 2 µs of work per frame: 200 ms for the chunk
        while (performance.now() < until);
      },
      message() {},
    }, { capture: [], maxBodyBytes: 1 << 20, peer: "client" });
    const pump = new RelayPump(from, to, scanner, () => assert.fail("no protocol error"), {
      bytes: 0,
      stalls: 0,
      stallSeconds: 0,
    });
    const chunk = new Uint8Array(execute.length * 100_000);
    for (let i = 0; i < 100_000; i++) chunk.set(execute, i * execute.length);
    const started = performance.now();
    pump.forward(chunk);
    const blocked = performance.now() - started;
    assert.ok(frames < 100_000, `the first slice stops early (${frames} frames in ${blocked.toFixed(0)} ms)`);
    assert.equal(from.paused, true, "the source waits for the rest of the chunk");
    assert.equal(pump.stalled, true);
    while (frames < 100_000) await sleep(0);
    assert.equal(from.paused, false, "resumed once the chunk is done");
    assert.deepEqual(to.bytes, chunk, "all bytes, in order");
    assert.ok(to.written.length > 2, `written in ${to.written.length} slices`);
    pump.dispose();
  });

  it("a chunk delivered while a sliced one is pending goes out after it", () => {
    const from = new MemorySocket();
    const to = new MemorySocket();
    const scanner = new FrameScanner({
      frame() {
        const until = performance.now() + 0.002;
        while (performance.now() < until);
      },
      message() {},
    }, { capture: [], maxBodyBytes: 1 << 20, peer: "client" });
    const pump = new RelayPump(from, to, scanner, () => {}, { bytes: 0, stalls: 0, stallSeconds: 0 });
    const chunk = new Uint8Array(execute.length * 20_000);
    for (let i = 0; i < 20_000; i++) chunk.set(execute, i * execute.length);
    pump.forward(chunk);
    assert.equal(pump.stalled, true);
    const sync = new Uint8Array([0x53, 0, 0, 0, 4]);
    pump.forward(sync); // a source that ignored pause()
    const out = to.bytes;
    assert.equal(out.length, chunk.length + sync.length);
    assert.deepEqual(out.subarray(chunk.length), sync);
    pump.dispose();
  });
});
