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
/** Frames scanned between looks at the clock: a chunk with fewer (nearly every chunk) never reads it. */
const FRAMES_PER_CHECK = 1024;
/**
 * The longest one chunk is scanned in one turn of the event loop. A chunk of tiny frames (a flood of
 * 10-byte Executes: 50,000 in one read on Bun) is scanned in slices: the part scanned is sent, the source
 * paused, and the rest scanned in a later task, so one client never holds up timers or other sessions.
 */
const SLICE_MS = 10;

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
    if (!this.#waitingForDrain && !this.#rest) this.#from.resume();
  };
  /** The chunk whose scan was cut short by SLICE_MS (the source stays paused until it is done), and where. */
  #rest: Uint8Array | undefined;
  #restAt = 0;
  #sliceTimer: ReturnType<typeof setTimeout> | undefined;
  /** The start of a small frame the scanner wants whole (BackendKeyData) that the last chunk cut: a copy. */
  #held: Uint8Array | undefined;
  readonly #continue = () => {
    this.#sliceTimer = undefined;
    const rest = this.#rest;
    if (!rest) return;
    this.#rest = undefined;
    this.#relay(rest, this.#restAt);
    if (!this.#rest && !this.#waitingForDrain && !this.#throttled) this.#from.resume();
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
    const received = chunk.length;
    this.#counters.bytes += received;
    // A chunk delivered while one is still being scanned (a source that ignored pause) keeps its order.
    if (this.#rest) this.#flushRest();
    if (this.#held) {
      // Rare: a frame to rewrite straddled reads. Join its few bytes with this chunk and scan again.
      const joined = new Uint8Array(this.#held.length + chunk.length);
      joined.set(this.#held);
      joined.set(chunk, this.#held.length);
      this.#held = undefined;
      chunk = joined;
    }
    if (this.#scanner) this.#relay(chunk, 0);
    else if (!this.#to.write(chunk)) this.stall();
    if (this.#rate > 0) this.#spend(received);
  }

  /** Scans and writes what is left of a sliced chunk now. */
  #flushRest(): void {
    const rest = this.#rest!;
    this.#rest = undefined;
    clearTimeout(this.#sliceTimer);
    this.#sliceTimer = undefined;
    this.#relay(rest, this.#restAt, false);
  }

  /** Scans `chunk` from `from` (for at most SLICE_MS when `sliced`) and writes what was scanned. */
  #relay(chunk: Uint8Array, from: number, sliced = true): void {
    const scanner = this.#scanner!;
    let end: number;
    try {
      end = scanner.scan(chunk, from, sliced ? FRAMES_PER_CHECK : undefined);
      if (end < chunk.length && !scanner.holding) {
        const started = performance.now();
        do end = scanner.scan(chunk, end, FRAMES_PER_CHECK);
        while (end < chunk.length && !scanner.holding && performance.now() - started < SLICE_MS);
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // The complete frames before the bad one still go through, so the peer sees a well-formed stream.
      if (error.offset > from) this.#to.write(chunk.subarray(from, error.offset));
      this.#onProtocolError(error);
      return;
    }
    const replacement = scanner.takeReplacement();
    let flushed: boolean;
    if (replacement) {
      // A frame the session chose to rewrite (see Session: SCRAM mechanisms for plaintext clients).
      flushed = this.#to.write(chunk.subarray(from, replacement.start));
      flushed = this.#to.write(replacement.bytes) && flushed;
      flushed = this.#to.write(chunk.subarray(replacement.end, end)) && flushed;
    } else flushed = this.#to.write(from === 0 && end === chunk.length ? chunk : chunk.subarray(from, end));
    if (!flushed) this.stall();
    if (scanner.holding) {
      // The source's buffer may be reused once this returns: keep a copy (a few hundred bytes at most).
      this.#held = chunk.slice(end);
      return;
    }
    if (end < chunk.length) {
      // The rest waits for a later task; the source stays paused so its buffer is not reused meanwhile.
      this.#rest = chunk;
      this.#restAt = end;
      this.#from.pause();
      this.#sliceTimer = setTimeout(this.#continue, 0);
    }
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

  /** Stops a pending bandwidth or slice timer (the session is ending). */
  dispose(): void {
    clearTimeout(this.#throttleTimer);
    this.#throttleTimer = undefined;
    clearTimeout(this.#sliceTimer);
    this.#sliceTimer = undefined;
    this.#rest = undefined;
    this.#held = undefined;
  }

  /** True while the source is paused until the destination drains, or until a sliced chunk is done. */
  get stalled(): boolean {
    return this.#waitingForDrain || this.#rest !== undefined;
  }

  /** The destination drained: read the source again. */
  drained(): void {
    if (!this.#waitingForDrain) return;
    this.#waitingForDrain = false;
    const waitedMs = performance.now() - this.#stalledAt;
    this.#counters.stallSeconds += waitedMs / 1000;
    if (waitedMs > STALL_THRESHOLD_MS) this.#counters.stalls++;
    if (!this.#throttled && !this.#rest) this.#from.resume();
  }

  /** Pauses the source until the destination drains (also used for bytes written outside `forward`). */
  stall(): void {
    this.#stalledAt = performance.now();
    this.#waitingForDrain = true;
    this.#from.pause();
  }
}
