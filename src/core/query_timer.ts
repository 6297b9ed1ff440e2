/**
 * Times queries from the frames passing by: a simple query (`Q`) runs until its ReadyForQuery, an Execute
 * (`E`) until its CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse. Pipelined
 * requests wait in order; a Sync is answered by a ReadyForQuery; Executes skipped after an error are
 * dropped at the ReadyForQuery of their Sync.
 */
import { BACKEND, FRONTEND } from "../protocol/codes.ts";

const QUERY = 0;
const EXECUTE = 1;
const SYNC = 2; // answered by a ReadyForQuery, not timed

export class QueryTimer {
  readonly #kinds: number[] = [];
  readonly #starts: number[] = [];
  readonly #finished: (seconds: number) => void;

  constructor(finished: (seconds: number) => void) {
    this.#finished = finished;
  }

  /** Queries sent and not yet answered. */
  get outstanding(): number {
    return this.#kinds.length;
  }

  frontend(type: number): void {
    if (type === FRONTEND.QUERY) this.#push(QUERY);
    else if (type === FRONTEND.EXECUTE) this.#push(EXECUTE);
    else if (type === FRONTEND.SYNC) this.#push(SYNC);
  }

  backend(type: number): void {
    if (this.#kinds.length === 0) return;
    switch (type) {
      case BACKEND.COMMAND_COMPLETE:
      case BACKEND.EMPTY_QUERY_RESPONSE:
      case BACKEND.PORTAL_SUSPENDED:
      case BACKEND.ERROR_RESPONSE:
        if (this.#kinds[0] === EXECUTE) this.#pop();
        break;
      case BACKEND.READY_FOR_QUERY:
        while (this.#kinds[0] === EXECUTE) this.#drop(); // skipped after an error until Sync
        if (this.#kinds[0] === QUERY) this.#pop();
        else if (this.#kinds[0] === SYNC) this.#drop();
        break;
    }
  }

  #push(kind: number): void {
    this.#kinds.push(kind);
    this.#starts.push(performance.now());
  }

  #pop(): void {
    this.#kinds.shift();
    this.#finished((performance.now() - this.#starts.shift()!) / 1000);
  }

  #drop(): void {
    this.#kinds.shift();
    this.#starts.shift();
  }
}
