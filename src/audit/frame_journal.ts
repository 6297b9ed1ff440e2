/**
 * Defers the audit log's reading of frames. On the relay's path a frame the query trackers need is only
 * noted: its type, the time and a copy of its (small, captured) body, appended to preallocated arrays.
 * Every few milliseconds `replay()` hands the notes to their trackers in one tight loop.
 *
 * Why: measured on 2-core VMs, the same tracker and JSON code cost several times more per query when it
 * runs between socket reads (cold caches, fresh allocations after every context switch) than in a batch.
 * Noting a frame allocates nothing; the batch does the decoding and formatting while its code is warm.
 * Timing is unchanged: each note carries the time it was taken, and replay runs the trackers on that
 * clock.
 */

/** What a note is replayed into (QueryTracker). */
export interface FrameReader {
  frontend(type: number, body: Uint8Array, truncated: boolean): void;
  backendFrame(type: number): void;
  backend(type: number, body: Uint8Array): void;
}

const FRONTEND_BODY = 0;
const BACKEND_FRAME = 1;
const BACKEND_BODY = 2;

/** Notes held before a replay is forced. */
const MAX_NOTES = 8192;
/** Body bytes held before a replay is forced; a body larger than this is read at once instead. */
const MAX_BODY_BYTES = 512 * 1024;

export class FrameJournal {
  readonly #readers: (FrameReader | undefined)[] = new Array(MAX_NOTES).fill(undefined);
  readonly #kinds = new Uint8Array(MAX_NOTES);
  readonly #types = new Uint8Array(MAX_NOTES);
  readonly #truncated = new Uint8Array(MAX_NOTES);
  readonly #times = new Float64Array(MAX_NOTES);
  readonly #starts = new Int32Array(MAX_NOTES);
  readonly #ends = new Int32Array(MAX_NOTES);
  readonly #bodies = new Uint8Array(MAX_BODY_BYTES);
  #notes = 0;
  #bodyBytes = 0;
  #clock = 0;
  readonly #scheduleReplay: () => void;

  /** `scheduleReplay` is called when the first note of a batch is taken (the owner replays soon after). */
  constructor(scheduleReplay: () => void) {
    this.#scheduleReplay = scheduleReplay;
  }

  /** The time of the note being replayed (or of now, outside a replay): the trackers' clock. */
  readonly now = (): number => this.#clock || performance.now();

  /** The wall-clock time (epoch ms) of the note being replayed, or of now outside a replay. */
  wallClock(): number {
    return this.#clock ? this.#clock + (Date.now() - performance.now()) : Date.now();
  }

  /** Notes held. */
  get size(): number {
    return this.#notes;
  }

  frontend(reader: FrameReader, type: number, body: Uint8Array, truncated: boolean): void {
    this.#note(reader, FRONTEND_BODY, type, body, truncated);
  }

  backendFrame(reader: FrameReader, type: number): void {
    this.#note(reader, BACKEND_FRAME, type, undefined, false);
  }

  backend(reader: FrameReader, type: number, body: Uint8Array): void {
    this.#note(reader, BACKEND_BODY, type, body, false);
  }

  /** Hands every note to its reader, in order, on the clock of the note. */
  replay(): void {
    const notes = this.#notes;
    this.#notes = 0;
    this.#bodyBytes = 0;
    try {
      for (let i = 0; i < notes; i++) {
        const reader = this.#readers[i]!;
        this.#readers[i] = undefined;
        this.#clock = this.#times[i]!;
        const type = this.#types[i]!;
        const kind = this.#kinds[i];
        if (kind === BACKEND_FRAME) reader.backendFrame(type);
        else {
          const body = this.#bodies.subarray(this.#starts[i], this.#ends[i]);
          if (kind === FRONTEND_BODY) reader.frontend(type, body, this.#truncated[i] === 1);
          else reader.backend(type, body);
        }
      }
    } finally {
      this.#clock = 0;
    }
  }

  #note(reader: FrameReader, kind: number, type: number, body: Uint8Array | undefined, truncated: boolean): void {
    const length = body?.length ?? 0;
    if (this.#notes === MAX_NOTES || this.#bodyBytes + length > MAX_BODY_BYTES) this.replay();
    const now = performance.now();
    if (length > MAX_BODY_BYTES) {
      // Too big to note: read it now, after everything noted before it.
      this.#clock = now;
      try {
        if (kind === FRONTEND_BODY) reader.frontend(type, body!, truncated);
        else reader.backend(type, body!);
      } finally {
        this.#clock = 0;
      }
      return;
    }
    const i = this.#notes++;
    if (i === 0) this.#scheduleReplay();
    this.#readers[i] = reader;
    this.#kinds[i] = kind;
    this.#types[i] = type;
    this.#truncated[i] = truncated ? 1 : 0;
    this.#times[i] = now;
    this.#starts[i] = this.#bodyBytes;
    if (body) this.#bodies.set(body, this.#bodyBytes);
    this.#bodyBytes += length;
    this.#ends[i] = this.#bodyBytes;
  }
}
