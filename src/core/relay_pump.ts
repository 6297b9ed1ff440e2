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

  constructor(
    from: RelaySocket,
    to: RelaySocket,
    scanner: FrameScanner | null,
    onProtocolError: (error: ProtocolError) => void,
    counters: PumpCounters,
  ) {
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
    this.#from.resume();
  }

  /** Pauses the source until the destination drains (also used for bytes written outside `forward`). */
  stall(): void {
    this.#stalledAt = performance.now();
    this.#waitingForDrain = true;
    this.#from.pause();
  }
}
