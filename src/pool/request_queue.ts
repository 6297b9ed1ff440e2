/**
 * Tracks every request a client has sent on its server connection up to the reply that ends it, as a queue
 * (the way PgBouncer and PgDog do), so a transaction pool knows when a server connection may go back to the
 * pool: `releasable` is true only at ReadyForQuery `I` with nothing outstanding, outside COPY, and not while
 * the server is skipping to a Sync.
 *
 * What ends each request (https://www.postgresql.org/docs/current/protocol-flow.html):
 *   Query `Q`, FunctionCall `F`, Sync `S`  → ReadyForQuery `Z`
 *   Parse `P` → ParseComplete `1`; Bind `B` → BindComplete `2`; Close `C` → CloseComplete `3`
 *   Describe `D` → RowDescription `T` or NoData `n` (after ParameterDescription `t` for a statement)
 *   Execute `E` → CommandComplete `C`, EmptyQueryResponse `I` or PortalSuspended `s` (after rows or a COPY)
 *   Flush `H`, CopyData `d`, CopyDone `c`, CopyFail `f`, Terminate `X` → nothing of their own
 * An ErrorResponse to an extended-protocol request makes the server discard every message, a simple Query
 * included, until the next Sync: the queue drops those requests (settling them SKIPPED), and if the client has
 * not sent that Sync yet, it ignores what the client sends until it does. During COPY FROM STDIN the server
 * ignores Sync and Flush, so a Sync the client sends while copying in, or had pipelined behind the Execute that
 * started the COPY (libpq does), expects no ReadyForQuery.
 *
 * The queue also carries pgrelay's own entries (see PreparedStatements): requests it injected, whose replies
 * `backend()` tells the relay to swallow, and replies pgrelay owes the client itself, which `nextLocal()` hands
 * out once every request before them has been answered, so the client sees them in order.
 *
 * Bounded and O(1) per frame (amortized: an entry is pushed once and popped once): entries live in a ring of
 * typed arrays, grown by doubling up to `capacity` and never shifted. `room` says how many more entries fit;
 * the relay stops reading the client when it is low (backpressure: a client pipelining 100k Executes waits, as
 * it would for a server that stops reading). Pushing past the cap throws ProtocolError 54000, because a pool
 * that loses count of the replies owed can no longer tell when its server connection is free.
 */
import { BACKEND, FRONTEND, TRANSACTION_STATUS } from "../protocol/codes.ts";
import { CLOSE_COMPLETE_FRAME } from "../protocol/close_complete.ts";
import { encodeFrame } from "../protocol/encode_frame.ts";
import { encodeErrorResponse } from "../protocol/error_response.ts";
import { PARSE_COMPLETE_FRAME } from "../protocol/parse_complete.ts";
import { ProtocolError } from "../protocol/protocol_error.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";

/** Kinds of queue entries. */
export const REQUEST = {
  QUERY: 1, // Q
  FUNCTION_CALL: 2, // F
  SYNC: 3, // S
  PARSE: 4, // P
  BIND: 5, // B
  DESCRIBE: 6, // D
  EXECUTE: 7, // E
  CLOSE: 8, // C
  /** A Parse pgrelay sent itself (a statement the server lacked): its ParseComplete is swallowed. */
  OWN_PARSE: 9,
  /** A Close pgrelay sent itself (an eviction): its CloseComplete is swallowed. */
  OWN_CLOSE: 10,
  /**
   * pgrelay owes the client a ParseComplete (the server already had the statement). If the transaction has
   * failed by then, it owes what PostgreSQL answers a Parse there: ERROR 25P02, after which the server's
   * replies up to the next Sync's ReadyForQuery are swallowed (PostgreSQL would have skipped those messages).
   */
  LOCAL_PARSE_COMPLETE: 11,
  /** pgrelay owes the client a CloseComplete (Close of a named statement, answered locally). */
  LOCAL_CLOSE_COMPLETE: 12,
  /** pgrelay owes the client the frames given to enqueueLocalFrames (an ErrorResponse, say). */
  LOCAL_FRAMES: 13,
  /** A simple Query `DEALLOCATE name` pgrelay answers: CommandComplete DEALLOCATE and ReadyForQuery. */
  LOCAL_DEALLOCATE: 14,
  /**
   * pgrelay owes the client the ErrorResponse given to enqueueLocalError, or ERROR 25P02 if the transaction
   * has failed by then (PostgreSQL checks that first).
   */
  LOCAL_ERROR: 15,
} as const;
export type RequestKind = typeof REQUEST[keyof typeof REQUEST];

/** How a tagged entry ended. */
export const OUTCOME = {
  /** Answered (or, for a local entry, handed to the client). */
  OK: 0,
  /** The server answered it with an ErrorResponse. */
  FAILED: 1,
  /** Never processed: the server skipped it after an earlier error, or the queue was cleared. */
  SKIPPED: 2,
} as const;
export type Outcome = typeof OUTCOME[keyof typeof OUTCOME];

/** What the relay does with a server frame. */
export const VERDICT = {
  FORWARD: 0,
  /** The reply to a request pgrelay sent itself: do not send it to the client. */
  SWALLOW: 1,
} as const;
export type Verdict = typeof VERDICT[keyof typeof VERDICT];

/** Told when an entry enqueued with a non-zero tag ends. */
export interface RequestListener {
  settled(kind: RequestKind, tag: number, outcome: Outcome): void;
}

/** Entries (requests and pgrelay's own) a client may have outstanding by default. */
export const MAX_QUEUED_REQUESTS = 8192;
const INITIAL_CAPACITY = 16;

const COPY_NONE = 0;
const COPY_IN = 1;
const COPY_OUT = 2;
const COPY_BOTH = 3;

const NO_KINDS = new Uint8Array(0);
const NO_TAGS = new Int32Array(0);

const FAILED_TRANSACTION_ERROR = encodeErrorResponse({
  severity: "ERROR",
  code: SQLSTATE.IN_FAILED_SQL_TRANSACTION,
  message: "current transaction is aborted, commands ignored until end of transaction block",
});
const DEALLOCATE_COMPLETE = encodeFrame(BACKEND.COMMAND_COMPLETE, new TextEncoder().encode("DEALLOCATE\0"));
const readyFor = (status: number) => encodeFrame(BACKEND.READY_FOR_QUERY, Uint8Array.of(status));
const join = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
/** What PostgreSQL answers `DEALLOCATE name`, by transaction status. */
const DEALLOCATE_REPLY = {
  idle: join(DEALLOCATE_COMPLETE, readyFor(TRANSACTION_STATUS.IDLE)),
  inTransaction: join(DEALLOCATE_COMPLETE, readyFor(TRANSACTION_STATUS.IN_TRANSACTION)),
  failed: join(FAILED_TRANSACTION_ERROR, readyFor(TRANSACTION_STATUS.FAILED)),
} as const;

function isExtended(kind: number): boolean {
  return kind >= REQUEST.PARSE && kind !== REQUEST.LOCAL_DEALLOCATE;
}

function isLocal(kind: number): boolean {
  return kind >= REQUEST.LOCAL_PARSE_COMPLETE;
}

export interface RequestQueueOptions {
  /** Most entries outstanding at once (default MAX_QUEUED_REQUESTS). */
  capacity?: number;
  /** ReadyForQuery status of the server when the queue starts (default `I`). */
  transactionStatus?: number;
  listener?: RequestListener;
}

export class RequestQueue {
  #kinds = NO_KINDS;
  #tags = NO_TAGS;
  #head = 0;
  #size = 0;
  readonly #capacity: number;
  #listener: RequestListener | undefined;
  /** Frames of LOCAL_FRAMES entries, in queue order. */
  #localFrames: Uint8Array[] = [];
  #localHead = 0;

  #status: number;
  /** An ErrorResponse came while the request at the head (a Query, FunctionCall or Sync) ran. */
  #headFailed = false;
  /** The server discards everything until a Sync the client has not sent yet. */
  #skipping = false;
  #serverCopy = COPY_NONE;
  /** The client has seen CopyInResponse (or CopyBothResponse) and has not yet ended its copy. */
  #clientCopyIn = false;
  /** Syncs queued behind the Execute that started COPY FROM STDIN: the server consumes them while copying. */
  #copySyncs = 0;
  /** pgrelay answered 25P02 for a Parse: swallow the server's replies up to the next Sync's ReadyForQuery. */
  #swallowing = false;

  constructor(options: RequestQueueOptions = {}) {
    this.#capacity = options.capacity ?? MAX_QUEUED_REQUESTS;
    this.#status = options.transactionStatus ?? TRANSACTION_STATUS.IDLE;
    this.#listener = options.listener;
  }

  set listener(listener: RequestListener | undefined) {
    this.#listener = listener;
  }

  /** The server connection may go back to the pool: idle, nothing outstanding, no COPY, no skip to Sync. */
  get releasable(): boolean {
    return this.#size === 0 && this.#status === TRANSACTION_STATUS.IDLE && this.#serverCopy === COPY_NONE &&
      !this.#clientCopyIn && !this.#skipping && !this.#swallowing;
  }

  /** Entries awaiting their reply (or, for pgrelay's own answers, their turn). */
  get outstanding(): number {
    return this.#size;
  }

  /** Entries that still fit before the cap. */
  get room(): number {
    return this.#capacity - this.#size;
  }

  /** Status byte of the last ReadyForQuery (`I`, `T` or `E`). */
  get transactionStatus(): number {
    return this.#status;
  }

  /** The server discards the client's messages until its next Sync. */
  get skipping(): boolean {
    return this.#skipping;
  }

  /** A COPY is under way (on the server's side or the client's). */
  get inCopy(): boolean {
    return this.#serverCopy !== COPY_NONE || this.#clientCopyIn;
  }

  /** Bytes held by the ring. */
  get bytes(): number {
    return this.#kinds.length * 5;
  }

  /**
   * Tracks a client frame sent to the server unchanged (no prepared-statement handling). Returns false when
   * the server will ignore it (after an error, until Sync; a Sync while copying in).
   */
  frontend(type: number): boolean {
    switch (type) {
      case FRONTEND.QUERY:
        return this.enqueue(REQUEST.QUERY);
      case FRONTEND.FUNCTION_CALL:
        return this.enqueue(REQUEST.FUNCTION_CALL);
      case FRONTEND.SYNC:
        return this.enqueue(REQUEST.SYNC);
      case FRONTEND.PARSE:
        return this.enqueue(REQUEST.PARSE);
      case FRONTEND.BIND:
        return this.enqueue(REQUEST.BIND);
      case FRONTEND.DESCRIBE:
        return this.enqueue(REQUEST.DESCRIBE);
      case FRONTEND.EXECUTE:
        return this.enqueue(REQUEST.EXECUTE);
      case FRONTEND.CLOSE:
        return this.enqueue(REQUEST.CLOSE);
      case FRONTEND.COPY_DONE:
      case FRONTEND.COPY_FAIL:
        this.#clientCopyIn = false;
        return true;
      default:
        return true; // CopyData, Flush, Terminate: no reply of their own
    }
  }

  /**
   * Appends an entry; `tag` (non-zero) is handed back to the listener when it ends. Returns false, queuing
   * nothing, when the server is skipping to a Sync and the entry is not one. Throws ProtocolError 54000 when
   * the queue is full.
   */
  enqueue(kind: RequestKind, tag = 0): boolean {
    if (kind === REQUEST.SYNC) {
      if (this.#clientCopyIn) return false;
      this.#skipping = false;
    } else {
      this.#clientCopyIn = false; // a client that sends a request has left its copy
      if (this.#skipping) return false;
    }
    if (this.#size === this.#capacity) {
      throw new ProtocolError(`too many requests awaiting replies (more than ${this.#capacity}): read the replies before sending more`, {
        sqlstate: SQLSTATE.PROGRAM_LIMIT_EXCEEDED,
      });
    }
    if (this.#size === this.#kinds.length) this.#grow();
    const at = (this.#head + this.#size) & (this.#kinds.length - 1);
    this.#kinds[at] = kind;
    this.#tags[at] = tag;
    this.#size++;
    return true;
  }

  /** Like enqueue(LOCAL_FRAMES): `frames` go to the client once every request before them is answered. */
  enqueueLocalFrames(frames: Uint8Array, tag = 0): boolean {
    if (!this.enqueue(REQUEST.LOCAL_FRAMES, tag)) return false;
    this.#localFrames.push(frames);
    return true;
  }

  /** Like enqueue(LOCAL_ERROR): `error` (an ErrorResponse) is owed unless the transaction has failed by then. */
  enqueueLocalError(error: Uint8Array, tag = 0): boolean {
    if (!this.enqueue(REQUEST.LOCAL_ERROR, tag)) return false;
    this.#localFrames.push(error);
    return true;
  }

  /**
   * Tracks a server frame; `body` is needed for ReadyForQuery (its status byte). Returns SWALLOW for the reply
   * to a request pgrelay sent itself. Call nextLocal() after it until it returns undefined.
   */
  backend(type: number, body?: Uint8Array): Verdict {
    if (!this.#swallowing) return this.#track(type, body);
    this.#track(type, body);
    // #ready() stops swallowing at the ReadyForQuery of a Sync, which the client is owed.
    return type === BACKEND.READY_FOR_QUERY && !this.#swallowing ? VERDICT.FORWARD : VERDICT.SWALLOW;
  }

  #track(type: number, body: Uint8Array | undefined): Verdict {
    switch (type) {
      case BACKEND.PARSE_COMPLETE:
        return this.#answer(REQUEST.PARSE, REQUEST.OWN_PARSE);
      case BACKEND.BIND_COMPLETE:
        return this.#answer(REQUEST.BIND, REQUEST.BIND);
      case BACKEND.CLOSE_COMPLETE:
        return this.#answer(REQUEST.CLOSE, REQUEST.OWN_CLOSE);
      case BACKEND.ROW_DESCRIPTION:
      case BACKEND.NO_DATA:
        return this.#answer(REQUEST.DESCRIBE, REQUEST.DESCRIBE);
      case BACKEND.COMMAND_COMPLETE:
        this.#serverCopy = COPY_NONE;
        if (this.#headKind() === REQUEST.EXECUTE) {
          // What succeeds in a failed transaction ends it (ROLLBACK, COMMIT, ROLLBACK TO SAVEPOINT): no
          // longer failed, and not known to be idle until the ReadyForQuery.
          if (this.#status === TRANSACTION_STATUS.FAILED) this.#status = TRANSACTION_STATUS.IN_TRANSACTION;
          this.#pop(OUTCOME.OK);
          this.#dropCopySyncs();
        }
        return VERDICT.FORWARD;
      case BACKEND.EMPTY_QUERY_RESPONSE:
      case BACKEND.PORTAL_SUSPENDED:
        return this.#answer(REQUEST.EXECUTE, REQUEST.EXECUTE);
      case BACKEND.COPY_IN_RESPONSE:
        this.#serverCopy = COPY_IN;
        this.#clientCopyIn = true;
        this.#countCopySyncs();
        return VERDICT.FORWARD;
      case BACKEND.COPY_OUT_RESPONSE:
        this.#serverCopy = COPY_OUT;
        return VERDICT.FORWARD;
      case BACKEND.COPY_BOTH_RESPONSE:
        this.#serverCopy = COPY_BOTH;
        this.#clientCopyIn = true;
        this.#countCopySyncs();
        return VERDICT.FORWARD;
      case BACKEND.ERROR_RESPONSE:
        this.#error();
        return VERDICT.FORWARD;
      case BACKEND.READY_FOR_QUERY:
        this.#ready(body?.[0] ?? TRANSACTION_STATUS.IDLE);
        return VERDICT.FORWARD;
      default:
        return VERDICT.FORWARD; // rows, notices, notifications, ParameterStatus, ParameterDescription, ...
    }
  }

  /**
   * The next reply pgrelay owes the client now (every request before it has been answered), or undefined.
   * The bytes are whole frames; shared constants must not be written to.
   */
  nextLocal(): Uint8Array | undefined {
    // While swallowing, PostgreSQL would have skipped these too.
    while (this.#swallowing && this.#size > 0 && isLocal(this.#kinds[this.#head]!)) this.#pop(OUTCOME.SKIPPED);
    if (this.#size === 0) return undefined;
    const failed = this.#status === TRANSACTION_STATUS.FAILED;
    switch (this.#kinds[this.#head]) {
      case REQUEST.LOCAL_PARSE_COMPLETE:
        if (failed) {
          this.#pop(OUTCOME.FAILED);
          this.#swallowing = true;
          return FAILED_TRANSACTION_ERROR;
        }
        this.#pop(OUTCOME.OK);
        return PARSE_COMPLETE_FRAME;
      case REQUEST.LOCAL_CLOSE_COMPLETE:
        this.#pop(OUTCOME.OK);
        return CLOSE_COMPLETE_FRAME;
      case REQUEST.LOCAL_FRAMES: {
        const frames = this.#localFrames[this.#localHead]!;
        this.#pop(OUTCOME.OK);
        return frames;
      }
      case REQUEST.LOCAL_ERROR: {
        const error = this.#localFrames[this.#localHead]!;
        this.#pop(OUTCOME.OK);
        return failed ? FAILED_TRANSACTION_ERROR : error;
      }
      case REQUEST.LOCAL_DEALLOCATE:
        // In a failed transaction PostgreSQL refuses DEALLOCATE (25P02): the statement stays.
        this.#pop(this.#status === TRANSACTION_STATUS.FAILED ? OUTCOME.FAILED : OUTCOME.OK);
        return this.#status === TRANSACTION_STATUS.FAILED
          ? DEALLOCATE_REPLY.failed
          : this.#status === TRANSACTION_STATUS.IN_TRANSACTION
          ? DEALLOCATE_REPLY.inTransaction
          : DEALLOCATE_REPLY.idle;
      default:
        return undefined;
    }
  }

  /** Forgets everything (the server connection is gone): every entry is settled SKIPPED. */
  clear(status: number = TRANSACTION_STATUS.IDLE): void {
    while (this.#size > 0) this.#pop(OUTCOME.SKIPPED);
    this.#status = status;
    this.#skipping = false;
    this.#headFailed = false;
    this.#serverCopy = COPY_NONE;
    this.#clientCopyIn = false;
    this.#copySyncs = 0;
    this.#swallowing = false;
  }

  #headKind(): number {
    return this.#size === 0 ? 0 : this.#kinds[this.#head]!;
  }

  /** Pops the head when it is `kind` or `own`; the reply to `own` is swallowed. */
  #answer(kind: number, own: number): Verdict {
    const head = this.#headKind();
    if (head !== kind && head !== own) return VERDICT.FORWARD;
    this.#pop(OUTCOME.OK);
    return head === own && own !== kind ? VERDICT.SWALLOW : VERDICT.FORWARD;
  }

  #error(): void {
    const copying = this.#serverCopy;
    this.#serverCopy = COPY_NONE;
    // The server ignores the rest of a failed copy-in (CopyData, CopyDone, CopyFail are accepted and dropped).
    if (copying === COPY_IN || copying === COPY_BOTH) this.#clientCopyIn = false;
    const head = this.#headKind();
    if (head === 0) return; // not an answer to anything (FATAL at shutdown, say)
    if (!isExtended(head)) {
      this.#headFailed = true; // Query, FunctionCall or Sync: ReadyForQuery follows
      return;
    }
    this.#pop(OUTCOME.FAILED);
    this.#dropCopySyncs();
    while (this.#size > 0 && this.#kinds[this.#head] !== REQUEST.SYNC) this.#pop(OUTCOME.SKIPPED);
    if (this.#size === 0) this.#skipping = true;
  }

  #ready(status: number): void {
    const failed = this.#headFailed;
    this.#status = status;
    this.#serverCopy = COPY_NONE;
    // Defensive: extended requests still ahead of the Sync were never answered.
    while (this.#size > 0 && isExtended(this.#kinds[this.#head]!)) this.#pop(OUTCOME.SKIPPED);
    if (this.#size > 0) {
      if (this.#kinds[this.#head] === REQUEST.SYNC) this.#swallowing = false;
      this.#pop(failed ? OUTCOME.FAILED : OUTCOME.OK);
    }
    this.#headFailed = false;
  }

  /** At CopyInResponse to an Execute: the Syncs right behind it will be read (and ignored) by the copy. */
  #countCopySyncs(): void {
    this.#copySyncs = 0;
    if (this.#headKind() !== REQUEST.EXECUTE) return;
    const mask = this.#kinds.length - 1;
    while (this.#copySyncs + 1 < this.#size && this.#kinds[(this.#head + this.#copySyncs + 1) & mask] === REQUEST.SYNC) {
      this.#copySyncs++;
    }
  }

  #dropCopySyncs(): void {
    for (; this.#copySyncs > 0 && this.#size > 0; this.#copySyncs--) this.#pop(OUTCOME.SKIPPED);
    this.#copySyncs = 0;
  }

  #pop(outcome: Outcome): void {
    const kind = this.#kinds[this.#head]! as RequestKind;
    const tag = this.#tags[this.#head]!;
    this.#head = (this.#head + 1) & (this.#kinds.length - 1);
    this.#size--;
    this.#headFailed = false;
    if (kind === REQUEST.LOCAL_FRAMES || kind === REQUEST.LOCAL_ERROR) {
      this.#localFrames[this.#localHead++] = EMPTY;
      if (this.#localHead === this.#localFrames.length) {
        this.#localFrames.length = 0;
        this.#localHead = 0;
      }
    }
    if (tag !== 0) this.#listener?.settled(kind, tag, outcome);
  }

  /** Doubles the ring (its capacity stays a power of two), keeping the queue's order. */
  #grow(): void {
    const capacity = Math.max(INITIAL_CAPACITY, this.#kinds.length * 2);
    const kinds = new Uint8Array(capacity);
    const tags = new Int32Array(capacity);
    const mask = this.#kinds.length - 1;
    for (let i = 0; i < this.#size; i++) {
      const from = (this.#head + i) & mask;
      kinds[i] = this.#kinds[from]!;
      tags[i] = this.#tags[from]!;
    }
    this.#kinds = kinds;
    this.#tags = tags;
    this.#head = 0;
  }
}

const EMPTY = new Uint8Array(0);
