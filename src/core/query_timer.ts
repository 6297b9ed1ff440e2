/**
 * Times queries from the frames passing by: a simple query (`Q`) runs until its ReadyForQuery, an Execute
 * (`E`) until its CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse. Pipelined
 * requests wait in order; a Sync or a FunctionCall is answered by a ReadyForQuery (untimed); Executes
 * skipped after an error are dropped at the ReadyForQuery of their Sync.
 *
 * Bounded and O(1) per frame: requests wait in a ring of typed arrays (grown by doubling up to
 * MAX_TRACKED_REQUESTS, never shifted). A client that pipelines more than that without reading is not
 * timed past the bound: each request beyond it is counted (`overflowed`), and timing resumes at the
 * ReadyForQuery that answers the last of them.
 */
import { BACKEND, FRONTEND } from "../protocol/codes.ts";
import { MAX_TRACKED_REQUESTS, type TrackingUsage } from "./tracking_usage.ts";

const QUERY = 0;
const EXECUTE = 1;
const SYNC = 2; // a Sync or a FunctionCall: answered by a ReadyForQuery, not timed

const INITIAL_CAPACITY = 16;
/** A session that never sends a query holds no ring (the first request allocates it). */
const NO_KINDS = new Uint8Array(0);
const NO_STARTS = new Float64Array(0);

export class QueryTimer implements TrackingUsage {
  #kinds = NO_KINDS;
  #starts = NO_STARTS;
  #head = 0;
  #size = 0;
  #peak = 0;
  readonly #max: number;
  /** Past the bound: requests are not queued until a ReadyForQuery answers every one sent. */
  #overflowing = false;
  /** ReadyForQuery frames owed to untracked Syncs, Queries and FunctionCalls. */
  #untrackedReadies = 0;
  readonly #finished: (seconds: number) => void;
  readonly #overflowed: () => void;

  constructor(finished: (seconds: number) => void, overflowed: () => void = () => {}, max = MAX_TRACKED_REQUESTS) {
    this.#finished = finished;
    this.#overflowed = overflowed;
    this.#max = max;
  }

  /** Queries sent and not yet answered: those timed, and at least 1 while some past the bound may wait. */
  get outstanding(): number {
    return this.#size > 0 || !this.#overflowing ? this.#size : 1;
  }

  get entries(): number {
    return this.#size;
  }

  get peakEntries(): number {
    return this.#peak;
  }

  get bytes(): number {
    return this.#kinds.length * 9;
  }

  get peakBytes(): number {
    return this.#kinds.length * 9;
  }

  frontend(type: number): void {
    if (type === FRONTEND.QUERY) this.#push(QUERY);
    else if (type === FRONTEND.EXECUTE) this.#push(EXECUTE);
    else if (type === FRONTEND.SYNC || type === FRONTEND.FUNCTION_CALL) this.#push(SYNC);
  }

  backend(type: number): void {
    switch (type) {
      case BACKEND.COMMAND_COMPLETE:
      case BACKEND.EMPTY_QUERY_RESPONSE:
      case BACKEND.PORTAL_SUSPENDED:
      case BACKEND.ERROR_RESPONSE:
        if (this.#size > 0 && this.#kinds[this.#head] === EXECUTE) this.#pop();
        break;
      case BACKEND.READY_FOR_QUERY:
        while (this.#size > 0 && this.#kinds[this.#head] === EXECUTE) this.#drop(); // skipped after an error until Sync
        if (this.#size > 0) {
          if (this.#kinds[this.#head] === QUERY) this.#pop();
          else this.#drop();
        } else if (this.#untrackedReadies > 0) this.#untrackedReadies--;
        if (this.#overflowing && this.#size === 0 && this.#untrackedReadies === 0) this.#overflowing = false;
        break;
    }
  }

  #push(kind: number): void {
    if (this.#overflowing || this.#size === this.#max) {
      this.#overflowing = true;
      if (kind !== EXECUTE) this.#untrackedReadies++;
      this.#overflowed();
      return;
    }
    if (this.#size === this.#kinds.length) this.#grow();
    const at = (this.#head + this.#size) & (this.#kinds.length - 1);
    this.#kinds[at] = kind;
    this.#starts[at] = performance.now();
    if (++this.#size > this.#peak) this.#peak = this.#size;
  }

  #pop(): void {
    const start = this.#starts[this.#head]!;
    this.#drop();
    this.#finished((performance.now() - start) / 1000);
  }

  #drop(): void {
    this.#head = (this.#head + 1) & (this.#kinds.length - 1);
    this.#size--;
  }

  /** Doubles the ring (its capacity stays a power of two), keeping the queue's order. */
  #grow(): void {
    const capacity = Math.max(INITIAL_CAPACITY, this.#kinds.length * 2);
    const kinds = new Uint8Array(capacity);
    const starts = new Float64Array(capacity);
    for (let i = 0; i < this.#size; i++) {
      const from = (this.#head + i) & (this.#kinds.length - 1);
      kinds[i] = this.#kinds[from]!;
      starts[i] = this.#starts[from]!;
    }
    this.#kinds = kinds;
    this.#starts = starts;
    this.#head = 0;
  }
}
