/**
 * One direction of a session: forwards every chunk it receives as the same view (no copy, no re-encoding)
 * after the frame scanner has walked it, and stops reading its source while the destination is backed up.
 * Without a scanner (TLS passthrough) the bytes are opaque and only counted.
 */
import type { FrameScanner } from "../protocol/frame_scanner.ts";
import { ProtocolError } from "../protocol/protocol_error.ts";
import type { RelaySocket } from "./socket.ts";

export interface PumpCounters {
  bytes: number;
  /** Pauses longer than STALL_THRESHOLD_MS (on Deno every write completes asynchronously, so shorter waits are normal flow). */
  stalls: number;
  /** Total time the source was paused waiting for the destination to drain. */
  stallSeconds: number;
}

const STALL_THRESHOLD_MS = 1;

export class RelayPump {
  readonly #from: RelaySocket;
  readonly #to: RelaySocket;
  readonly #scanner: FrameScanner | null;
  readonly #onProtocolError: (error: ProtocolError) => void;
  readonly #counters: PumpCounters;
  #waitingForDrain = false;
  #stalledAt = 0;
  /** Bandwidth cap in bytes per second (0: none): a token bucket holding at most one second of budget. */
  readonly #rate: number;
  #budget: number;
  #budgetAt: number;
  #throttled = false;
  #throttleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bound once, so throttling allocates no closure per chunk. */
  readonly #unthrottle = () => {
    this.#throttled = false;
    this.#throttleTimer = undefined;
    if (!this.#waitingForDrain) this.#from.resume();
  };

  constructor(
    from: RelaySocket,
    to: RelaySocket,
    scanner: FrameScanner | null,
    onProtocolError: (error: ProtocolError) => void,
    counters: PumpCounters,
    bytesPerSecond = 0,
  ) {
    this.#rate = bytesPerSecond;
    this.#budget = bytesPerSecond;
    this.#budgetAt = performance.now();
    this.#counters = counters;
    this.#from = from;
    this.#to = to;
    this.#scanner = scanner;
    this.#onProtocolError = onProtocolError;
  }

  /** True when the bytes relayed so far end at a frame boundary (never for an opaque TLS stream). */
  get atBoundary(): boolean {
    return this.#scanner?.atBoundary ?? false;
  }

  /** Relays one chunk from the source. */
  forward(chunk: Uint8Array): void {
    this.#counters.bytes += chunk.length;
    try {
      this.#scanner?.scan(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // The complete frames before the bad one still go through, so the peer sees a well-formed stream.
      if (error.offset > 0) this.#to.write(chunk.subarray(0, error.offset));
      this.#onProtocolError(error);
      return;
    }
    const replacement = this.#scanner?.takeReplacement();
    if (replacement) {
      // A frame the session chose to rewrite (see Session: SCRAM mechanisms for plaintext clients).
      let flushed = this.#to.write(chunk.subarray(0, replacement.start));
      flushed = this.#to.write(replacement.bytes) && flushed;
      flushed = this.#to.write(chunk.subarray(replacement.end)) && flushed;
      if (!flushed) this.stall();
      return;
    }
    if (!this.#to.write(chunk)) this.stall();
    if (this.#rate > 0) this.#spend(chunk.length);
  }

  /**
   * Charges bytes already written against the bandwidth budget. Over budget, the source is paused for as
   * long as the budget needs to recover (backpressure, not buffering), then resumed.
   */
  #spend(bytes: number): void {
    const now = performance.now();
    this.#budget = Math.min(this.#rate, this.#budget + (now - this.#budgetAt) * this.#rate / 1000) - bytes;
    this.#budgetAt = now;
    if (this.#budget >= 0 || this.#throttled) return;
    this.#throttled = true;
    this.#from.pause();
    this.#throttleTimer = setTimeout(this.#unthrottle, (-this.#budget / this.#rate) * 1000);
  }

  /** True while the source is paused by the bandwidth cap. */
  get throttled(): boolean {
    return this.#throttled;
  }

  /** Stops a pending bandwidth timer (the session is ending). */
  dispose(): void {
    clearTimeout(this.#throttleTimer);
    this.#throttleTimer = undefined;
  }

  /** True while the source is paused until the destination drains. */
  get stalled(): boolean {
    return this.#waitingForDrain;
  }

  /** The destination drained: read the source again. */
  drained(): void {
    if (!this.#waitingForDrain) return;
    this.#waitingForDrain = false;
    const waitedMs = performance.now() - this.#stalledAt;
    this.#counters.stallSeconds += waitedMs / 1000;
    if (waitedMs > STALL_THRESHOLD_MS) this.#counters.stalls++;
    if (!this.#throttled) this.#from.resume();
  }

  /** Pauses the source until the destination drains (also used for bytes written outside `forward`). */
  stall(): void {
    this.#stalledAt = performance.now();
    this.#waitingForDrain = true;
    this.#from.pause();
  }
}
