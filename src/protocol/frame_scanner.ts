/**
 * Walks the typed frames of one direction of a session across arbitrary chunk boundaries without copying
 * them: only the bodies of the few message types the proxy must read are handed over, and only those are
 * copied, and only when they straddle chunks. Every other byte is merely counted past.
 *
 * Frame layout: `type byte, int32 length (counts itself, not the type), body`.
 * https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
 */
import { MAX_CAPTURED_BODY_BYTES } from "./limits.ts";
import { ProtocolError } from "./protocol_error.ts";

export interface FrameObserver {
  /** Called at every frame header with its type byte and body length. */
  frame(type: number, bodyLength: number): void;
  /**
   * Called with the body of a frame whose type was asked for. The view is only valid during the call.
   * `truncated` is set when the body was longer than the capture limit and only its head is given.
   */
  message(type: number, body: Uint8Array, truncated: boolean): void;
}

export interface FrameScannerOptions {
  /** Type bytes whose bodies the observer reads. */
  capture: Iterable<number>;
  /** Largest body accepted before the stream is declared broken. */
  maxBodyBytes: number;
  /** Bytes of a captured body to hand over; the rest is skipped. */
  maxCapturedBytes?: number;
  /** Names the peer in error messages: "client" or "server". */
  peer: string;
  /**
   * Captured types the observer may replace (see replaceCurrentFrame) and that are small (at most
   * MAX_WHOLE_FRAME_BYTES): when one does not lie whole in a chunk, scanning stops before its header and
   * `holding` is set, so the caller keeps those bytes and scans them again joined with the next chunk.
   */
  whole?: Iterable<number>;
}

/** The largest frame kept back to be handed over whole (BackendKeyData with a 256-byte secret is 265). */
export const MAX_WHOLE_FRAME_BYTES = 512;

const HEADER_BYTES = 5;
/** A capture buffer up to this size is kept for the next straddling body; a larger one is let go. */
const KEPT_CAPTURE_BYTES = 256;
const EMPTY = new Uint8Array(0);

/** One 256-entry table per set of captured types, shared by every scanner that captures that set. */
const captureTables = new Map<string, Uint8Array>();

function captureTable(types: Iterable<number>): Uint8Array {
  const list = [...new Set(types)].sort((a, b) => a - b);
  const key = list.join(",");
  let table = captureTables.get(key);
  if (!table) {
    table = new Uint8Array(256);
    for (const type of list) table[type] = 1;
    if (captureTables.size < 64) captureTables.set(key, table);
  }
  return table;
}

export class FrameScanner {
  readonly #observer: FrameObserver;
  /** 1 at the type bytes whose bodies the observer reads (shared, never written after creation). */
  readonly #captured: Uint8Array;
  readonly #maxBodyBytes: number;
  readonly #maxCapturedBytes: number;
  readonly #peer: string;

  readonly #header = new Uint8Array(HEADER_BYTES);
  #headerFill = 0;
  #type = 0;
  #remaining = 0;
  #capturing = false;
  #truncated = false;
  /** Holds a captured body that straddles chunks; allocated when one does, let go after a large one. */
  #captureBuffer = EMPTY;
  #captureFill = 0;
  #captureWant = 0;
  /** Where the frame being handed over sits in the current chunk, when it sits there whole. */
  #frameStart = -1;
  #frameEnd = -1;
  #replacement: { start: number; end: number; bytes: Uint8Array } | undefined;
  /** 1 at the types handed over whole (see FrameScannerOptions.whole); undefined when there are none. */
  readonly #whole: Uint8Array | undefined;
  #holding = false;

  constructor(observer: FrameObserver, options: FrameScannerOptions) {
    this.#observer = observer;
    this.#captured = captureTable(options.capture);
    this.#maxBodyBytes = options.maxBodyBytes;
    this.#maxCapturedBytes = options.maxCapturedBytes ?? MAX_CAPTURED_BODY_BYTES;
    this.#peer = options.peer;
    this.#whole = options.whole ? captureTable(options.whole) : undefined;
  }

  /**
   * Set by the last scan when it stopped before a frame of a `whole` type that the chunk holds only part
   * of: the caller keeps the chunk's bytes from there and scans them again joined with the next chunk.
   */
  get holding(): boolean {
    return this.#holding;
  }

  /** Bytes this scanner holds for captured bodies that straddle chunks (tests: memory follows the data). */
  get captureBufferBytes(): number {
    return this.#captureBuffer.length;
  }

  /** True when the bytes scanned so far end exactly at a frame boundary. */
  get atBoundary(): boolean {
    return this.#headerFill === 0 && this.#remaining === 0;
  }

  /**
   * Called from `message()`: asks that the frame being handed over reach the peer as `frame` (a whole
   * frame, header included) instead. Only possible when that frame lies whole in the current chunk;
   * returns false otherwise. One replacement per chunk; the relay pump applies it.
   */
  replaceCurrentFrame(frame: Uint8Array): boolean {
    if (this.#frameStart < 0 || this.#replacement) return false;
    this.#replacement = { start: this.#frameStart, end: this.#frameEnd, bytes: frame };
    return true;
  }

  /** The replacement requested while scanning the last chunk, if any (cleared by reading it). */
  takeReplacement(): { start: number; end: number; bytes: Uint8Array } | undefined {
    const replacement = this.#replacement;
    this.#replacement = undefined;
    return replacement;
  }

  /**
   * Scans one chunk from `from`, and returns where it stopped: the end of the chunk, or the frame boundary
   * before the `maxFrames + 1`-th frame header (so a caller can bound the work done per turn of the event
   * loop and scan the rest later). Throws ProtocolError (with the offset of the bad frame) on an impossible
   * length.
   */
  scan(chunk: Uint8Array, from = 0, maxFrames = 0x7fff_ffff): number {
    const end = chunk.length;
    let at = from;
    let frames = maxFrames;
    this.#holding = false;
    while (at < end) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, end - at);
        if (this.#capturing) this.#appendCapture(chunk, at, take);
        at += take;
        this.#remaining -= take;
        if (this.#remaining === 0 && this.#capturing) this.#deliverCapture();
        continue;
      }
      if (this.#headerFill === 0 && --frames < 0) return at;
      const headerStart = at;
      let type: number;
      let length: number;
      if (this.#headerFill === 0 && end - at >= HEADER_BYTES) {
        type = chunk[at]!;
        length = ((chunk[at + 1]! << 24) | (chunk[at + 2]! << 16) | (chunk[at + 3]! << 8) | chunk[at + 4]!);
        if (this.#whole !== undefined && this.#whole[type] === 1 && end - at < length + 1 && length + 1 <= MAX_WHOLE_FRAME_BYTES) {
          this.#holding = true;
          return at;
        }
        at += HEADER_BYTES;
      } else {
        // A frame to hand over whole whose header is cut: keep all of it for the next chunk.
        if (this.#headerFill === 0 && this.#whole !== undefined && this.#whole[chunk[at]!] === 1) {
          this.#holding = true;
          return at;
        }
        const take = Math.min(HEADER_BYTES - this.#headerFill, end - at);
        this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
        this.#headerFill += take;
        at += take;
        if (this.#headerFill < HEADER_BYTES) return end;
        const h = this.#header;
        type = h[0]!;
        length = (h[1]! << 24) | (h[2]! << 16) | (h[3]! << 8) | h[4]!;
        this.#headerFill = 0;
      }
      at = this.#beginFrame(type, length, chunk, at, headerStart, at - headerStart === HEADER_BYTES);
    }
    return end;
  }

  /** Starts a frame whose header was just read; returns the new chunk offset. */
  #beginFrame(type: number, length: number, chunk: Uint8Array, at: number, headerStart: number, headerInChunk: boolean): number {
    const bodyLength = length - 4;
    if (length < 4 || bodyLength > this.#maxBodyBytes) {
      const letter = type >= 32 && type < 127 ? `'${String.fromCharCode(type)}'` : `0x${type.toString(16)}`;
      throw new ProtocolError(
        `invalid message from ${this.#peer}: type ${letter} with length ${length} ` +
          `(must be 4 to ${this.#maxBodyBytes + 4})`,
        { offset: headerStart },
      );
    }
    this.#observer.frame(type, bodyLength);
    if (this.#captured[type] !== 1) {
      this.#remaining = bodyLength;
      return at;
    }
    const want = Math.min(bodyLength, this.#maxCapturedBytes);
    const truncated = want < bodyLength;
    if (chunk.length - at >= want) {
      // The common case: the body sits in this chunk, hand over a view.
      const whole = headerInChunk && chunk.length - at >= bodyLength;
      this.#frameStart = whole ? headerStart : -1;
      this.#frameEnd = whole ? at + bodyLength : -1;
      this.#observer.message(type, chunk.subarray(at, at + want), truncated);
      this.#frameStart = -1;
      const skip = Math.min(bodyLength, chunk.length - at);
      this.#remaining = bodyLength - skip;
      this.#capturing = false;
      return at + skip;
    }
    this.#type = type;
    this.#remaining = bodyLength;
    this.#capturing = true;
    this.#truncated = truncated;
    this.#captureWant = want;
    this.#captureFill = 0;
    if (this.#captureBuffer.length < want) this.#captureBuffer = new Uint8Array(Math.max(want, KEPT_CAPTURE_BYTES));
    return at;
  }

  #appendCapture(chunk: Uint8Array, at: number, take: number): void {
    const room = this.#captureWant - this.#captureFill;
    if (room <= 0) return;
    const n = Math.min(room, take);
    this.#captureBuffer.set(chunk.subarray(at, at + n), this.#captureFill);
    this.#captureFill += n;
    if (this.#captureFill === this.#captureWant) this.#deliverCapture();
  }

  #deliverCapture(): void {
    if (!this.#capturing) return;
    this.#capturing = false;
    const buffer = this.#captureBuffer;
    // Memory follows the data in flight: a large body's buffer is not kept for the rest of the session.
    if (buffer.length > KEPT_CAPTURE_BYTES) this.#captureBuffer = EMPTY;
    this.#observer.message(this.#type, buffer.subarray(0, this.#captureFill), this.#truncated);
  }
}
