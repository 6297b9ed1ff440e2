/**
 * The read side of every adapter: passes a socket's events to the handlers `listen` installed, and holds
 * the ones that cannot be delivered yet.
 * - Before `listen`: data, a drain and the close are kept and replayed in order when it is called
 *   (push runtimes deliver bytes as soon as the socket is open; a connect may resolve after the peer
 *   spoke).
 * - While paused: data is held, even if the runtime still delivers a chunk it had read (Deno's pending
 *   read, Bun's current batch), and replayed on resume; a receiver that pauses during the replay stops
 *   it. Drain is not data and goes through while paused (the relay waits for a paused socket to drain).
 * - Close: exactly once, after the data that came before it; nothing follows it. A close with an error,
 *   or after `discard()` (destroy), drops held data and is reported at once.
 * Held chunks are views the runtime gave; push runtimes hand each event a fresh buffer, and Deno's read
 * loop does not reuse its buffer while a chunk is held. The held list exists only while something is held.
 */
import type { SocketEvents } from "../core/socket.ts";

export class EventGate {
  #events: SocketEvents | undefined;
  #held: Uint8Array[] | undefined;
  #paused = false;
  /** The runtime was asked to stop reading (by `pause`) and not yet to start again. */
  #readingPaused = false;
  #drainOwed = false;
  /** The runtime reported the close; `#closeReported` once the handlers saw it. */
  #closed = false;
  #closeReported = false;
  #closeError: Error | undefined;
  /** True while the held chunks are being replayed (a nested resume must not replay them twice). */
  #replaying = false;

  /** True while the receiver asked for no data. */
  get paused(): boolean {
    return this.#paused;
  }

  /** True while chunks wait for `listen` or `resume`. */
  get holding(): boolean {
    return this.#held !== undefined;
  }

  /** True once the runtime reported the close (it may still wait for held data to be delivered). */
  get closed(): boolean {
    return this.#closed;
  }

  /** RelaySocket.listen: installs (or replaces) the handlers and delivers what was held for them. */
  listen(events: SocketEvents): void {
    this.#events = events;
    if (this.#drainOwed && !this.#closed) {
      this.#drainOwed = false;
      events.drain();
    }
    this.#release();
  }

  /** A chunk from the runtime. */
  data(chunk: Uint8Array): void {
    if (this.#closed) return;
    if (this.#events !== undefined && !this.#paused && this.#held === undefined) this.#events.data(chunk);
    else (this.#held ??= []).push(chunk);
  }

  /** The write queue emptied. */
  drain(): void {
    if (this.#closed) return;
    if (this.#events) this.#events.drain();
    else this.#drainOwed = true;
  }

  /** The socket closed (peer, end, error or destroy). Reported once, after held data unless `error`. */
  close(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    if (error) this.#held = undefined;
    this.#release();
  }

  /** Drops held data (end or destroy here: nobody will read it); a close waiting behind it is reported. */
  discard(): void {
    this.#held = undefined;
    this.#release();
  }

  /** RelaySocket.pause. True when the runtime should stop reading now. */
  pause(): boolean {
    this.#paused = true;
    if (this.#readingPaused) return false;
    this.#readingPaused = true;
    return true;
  }

  /**
   * RelaySocket.resume: delivers held data (until the receiver pauses again). True when the runtime
   * should read again.
   */
  resume(): boolean {
    if (!this.#paused) return false;
    this.#paused = false;
    this.#release();
    if (this.#paused || !this.#readingPaused || this.#closeReported) return false;
    this.#readingPaused = false;
    return true;
  }

  /** Takes the held chunks (TLS takes over the stream: they go back to the runtime socket, in order). */
  takeHeld(): Uint8Array[] | undefined {
    const held = this.#held;
    this.#held = undefined;
    return held;
  }

  /** Delivers held chunks while listening and not paused, then the close if it is due. */
  #release(): void {
    if (this.#events === undefined || this.#replaying || this.#closeReported) return;
    const held = this.#held;
    if (held !== undefined) {
      this.#replaying = true;
      try {
        // The handlers may be replaced by a data handler (listen again): read them per chunk.
        while (held.length > 0 && !this.#paused && this.#held === held) this.#events.data(held.shift()!);
      } finally {
        this.#replaying = false;
      }
      if (this.#held === held && held.length === 0) this.#held = undefined;
    }
    if (this.#closed && this.#held === undefined && !this.#closeReported) {
      this.#closeReported = true;
      this.#events.close(this.#closeError);
    }
  }
}
