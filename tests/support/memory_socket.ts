/**
 * An in-memory RelaySocket for unit tests of the core: records writes, lets a test decide whether writes
 * are accepted at once or queue (backpressure), and emits data, drain and close on demand.
 */
import type { RelaySocket, SocketAddress, SocketEvents } from "../../src/core/socket.ts";

export class MemorySocket implements RelaySocket {
  readonly remoteAddress: SocketAddress;
  readonly written: Uint8Array[] = [];
  events: SocketEvents | undefined;
  paused = false;
  ended = false;
  destroyed = false;
  /** When true, writes are accepted but reported as queued until `drain()`. */
  congested = false;
  #pending = 0;

  constructor(remoteAddress: SocketAddress = { hostname: "127.0.0.1", port: 40000 }) {
    this.remoteAddress = remoteAddress;
  }

  get pendingBytes(): number {
    return this.#pending;
  }

  get bytes(): Uint8Array {
    const out = new Uint8Array(this.written.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const chunk of this.written) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  listen(events: SocketEvents): void {
    this.events = events;
  }

  write(bytes: Uint8Array): boolean {
    this.written.push(bytes.slice());
    if (!this.congested) return true;
    this.#pending += bytes.length;
    return false;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    queueMicrotask(() => this.events?.close());
  }

  destroy(): void {
    this.destroyed = true;
    this.end();
  }

  /** The peer sends bytes. */
  receive(bytes: Uint8Array | number[]): void {
    this.events?.data(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  }

  /** The peer caught up with everything written. */
  drain(): void {
    this.congested = false;
    this.#pending = 0;
    this.events?.drain();
  }
}
