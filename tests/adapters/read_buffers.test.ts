/**
 * Read buffers of the runtime's adapter: small while a socket idles, larger only while data is in flight,
 * and a chunk a paused receiver still holds is never reused by another socket.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { adapterFor } from "../../src/adapters/runtime.ts";
import type { Listener, RelaySocket, SocketEvents } from "../../src/core/socket.ts";

const adapter = adapterFor();
const IDLE_READ_BUFFER_LIMIT = 2 * 1024;

/** What the adapters expose for this test: bytes of read buffer a socket holds now. */
const readBufferBytes = (socket: RelaySocket) => (socket as unknown as { readBufferBytes: number }).readBufferBytes;

const QUIET: SocketEvents = { data() {}, drain() {}, close() {} };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe(`${adapter.name} adapter read buffers`, () => {
  let listener: Listener;
  const accepted: RelaySocket[] = [];
  const opened: RelaySocket[] = [];

  before(async () => {
    listener = await adapter.listen({ hostname: "127.0.0.1", port: 0 }, (socket) => accepted.push(socket));
  });
  after(async () => {
    for (const socket of [...accepted, ...opened]) socket.destroy();
    await listener.close();
  });

  /** A connected pair: `near` is the connecting side, `far` the accepted one. */
  async function pair(): Promise<{ near: RelaySocket; far: RelaySocket }> {
    const count = accepted.length;
    const near = await adapter.connect(listener.address, { timeoutMs: 5000 });
    opened.push(near);
    near.listen(QUIET);
    await until(() => accepted.length > count, "the accepted socket");
    return { near, far: accepted[count]! };
  }

  /** Writes `bytes` from `near`, waiting for drains, until all are out. */
  async function send(near: RelaySocket, bytes: Uint8Array): Promise<void> {
    let drained = Promise.resolve();
    let wake = () => {};
    near.listen({ data() {}, drain: () => wake(), close() {} });
    if (!near.write(bytes)) {
      drained = new Promise<void>((resolve) => wake = resolve);
      await drained;
    }
  }

  it("an idle socket holds at most 2 KiB of read buffer, also after a bulk transfer", async () => {
    const { near, far } = await pair();
    let received = 0;
    let largest = 0;
    far.listen({
      data(chunk) {
        received += chunk.length;
        largest = Math.max(largest, chunk.length);
      },
      drain() {},
      close() {},
    });
    await sleep(20);
    assert.ok(readBufferBytes(far) <= IDLE_READ_BUFFER_LIMIT, `before any data: ${readBufferBytes(far)} bytes`);
    const bulk = new Uint8Array(4 * 1024 * 1024).fill(7);
    await send(near, bulk);
    await until(() => received === bulk.length, "the bulk transfer");
    assert.ok(largest > IDLE_READ_BUFFER_LIMIT, `chunks grew under load (largest ${largest} bytes)`);
    // A small message ends the burst: the socket goes back to its small buffer while it waits.
    await send(near, new Uint8Array(10));
    await until(() => received === bulk.length + 10, "the small message");
    await sleep(20);
    assert.ok(readBufferBytes(far) <= IDLE_READ_BUFFER_LIMIT, `idle after a burst: ${readBufferBytes(far)} bytes`);
  });

  it("a chunk kept by a paused receiver stays intact while other sockets read", async () => {
    const a = await pair();
    const b = await pair();
    let held: Uint8Array | undefined;
    let copy: Uint8Array | undefined;
    a.far.listen({
      data(chunk) {
        // Keep a chunk read under load (on Deno: into a buffer from the shared pool), not a first small one.
        if (held || chunk.length <= IDLE_READ_BUFFER_LIMIT) return;
        held = chunk;
        copy = chunk.slice();
        a.far.pause(); // the contract: the view stays valid until resume()
      },
      drain() {},
      close() {},
    });
    let bReceived = 0;
    b.far.listen({ data: (chunk) => void (bReceived += chunk.length), drain() {}, close() {} });
    const first = new Uint8Array(512 * 1024);
    for (let i = 0; i < first.length; i++) first[i] = (i * 31) & 0xff;
    void send(a.near, first);
    await until(() => held !== undefined, "a's first chunk");
    // Other sockets now read bulk data through the same process-wide pool, several bursts.
    for (let round = 1; round <= 4; round++) {
      await send(b.near, new Uint8Array(1024 * 1024).fill(0xee));
      await until(() => bReceived === round * 1024 * 1024 + round - 1, `b's burst ${round} (${bReceived})`);
      await send(b.near, new Uint8Array(1).fill(0xee));
      await until(() => bReceived === round * 1024 * 1024 + round, `b's small message ${round}`);
    }
    assert.deepEqual(held, copy, "the paused chunk was not overwritten");
    a.far.resume();
  });
});
