/**
 * Pairs a session's requests with the server's answers to build `query` audit events.
 *
 * - Simple protocol: one event per Query (`Q`), its text, and every CommandComplete of a multi-statement
 *   query (`commands`); timed until the last CommandComplete or ErrorResponse, emitted at ReadyForQuery.
 * - Extended protocol: Parse (`P`) records a statement's name and text, Bind (`B`) which statement a portal
 *   runs (parameter values are never read), Execute (`E`) makes one event with the statement's name and
 *   text and the number of times that statement has been executed in this session, timed until its
 *   CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse. Executes that the server skips
 *   after an error (until Sync) make no event.
 * - FunctionCall (`F`, the fast-path interface that libpq's large-object functions use): one event with
 *   the function's OID, timed until its ReadyForQuery; the arguments are never read.
 * Reads only bodies the frame scanner captured; never the Bind parameters or function arguments.
 *
 * Bounded whatever the client sends (TrackerLimits): requests awaiting their answer wait in a ring (never
 * shifted) of at most MAX_TRACKED_REQUESTS, holding at most `maxPendingBytes` of query text; statements and
 * portals are counted together, entries and bytes (names included), against one per-session budget; a
 * multi-statement query keeps at most `maxCommands` results. Past a cap the tracker stops keeping, tells
 * `overflowed` (the `pgrelay_audit_tracking_overflow_total` metric) and degrades: requests past the bound
 * make no event until a ReadyForQuery answers every one sent; an Execute of an untracked statement or
 * portal logs no text and `text_truncated`. Portals end with their transaction, so they are forgotten at
 * every ReadyForQuery that reports idle.
 */
import type { AuditTrackingOverflow } from "../core/metrics_sink.ts";
import { MAX_TRACKED_REQUESTS, type TrackingUsage } from "../core/tracking_usage.ts";
import { BACKEND, FRONTEND } from "../protocol/codes.ts";
import { decodeErrorFields } from "../protocol/error_response.ts";

/** The frontend message types whose bodies the tracker reads. */
export const QUERY_CAPTURES = [
  FRONTEND.QUERY,
  FRONTEND.PARSE,
  FRONTEND.BIND,
  FRONTEND.EXECUTE,
  FRONTEND.CLOSE,
  FRONTEND.SYNC,
  FRONTEND.FUNCTION_CALL,
] as const;

/** Bytes of a FunctionCall body the tracker reads: the function's OID, not the arguments after it. */
export const FUNCTION_CALL_READ_BYTES = 4;

const lookup = (types: readonly number[]) => {
  const table = new Uint8Array(256);
  for (const type of types) table[type] = 1;
  return table;
};
/** Backend frames whose header alone the tracker reads (`backendFrame`), as a 1-per-type lookup table. */
export const TRACKED_BACKEND_FRAMES = lookup([
  BACKEND.READY_FOR_QUERY,
  BACKEND.EMPTY_QUERY_RESPONSE,
  BACKEND.PORTAL_SUSPENDED,
]);
/** Backend frames whose body the tracker reads (`backend`); ReadyForQuery's says whether a transaction ended. */
export const TRACKED_BACKEND_BODIES = lookup([BACKEND.COMMAND_COMPLETE, BACKEND.ERROR_RESPONSE, BACKEND.READY_FOR_QUERY]);

/** The per-session caps of a QueryTracker. */
export interface TrackerLimits {
  /** Requests awaiting their answer. */
  maxPending: number;
  /** Characters of query text held by requests awaiting their answer. */
  maxPendingBytes: number;
  /** Prepared statements and portals remembered, together. */
  maxNamed: number;
  /** Bytes of their names and statement text (UTF-8), plus NAMED_ENTRY_BYTES for each entry. */
  maxNamedBytes: number;
  /** Results kept for one multi-statement simple query (`commands`). */
  maxCommands: number;
}

export const DEFAULT_TRACKER_LIMITS: TrackerLimits = {
  maxPending: MAX_TRACKED_REQUESTS,
  maxPendingBytes: 4 << 20,
  maxNamed: 10_000,
  maxNamedBytes: 4 << 20,
  maxCommands: 1000,
};

/** What one statement or portal costs besides its strings (the map entry and its record), for the budget. */
export const NAMED_ENTRY_BYTES = 64;
/** What one request awaiting its answer costs besides its text (the record), for the budget. */
const PENDING_ENTRY_BYTES = 96;

export interface QueryEvent {
  protocol: "simple" | "extended" | "function_call";
  /** Prepared statement name ("" for the unnamed statement); extended protocol only. */
  statement?: string;
  /** The query's text (absent for a function call). */
  text?: string;
  text_truncated?: boolean;
  /** The OID of the function a FunctionCall ran (pg_proc.oid). */
  function_oid?: number;
  /** The how-many-th execution of this prepared statement in the session; extended protocol only. */
  execution?: number;
  duration_ms: number;
  /** The (last) CommandComplete tag, e.g. "SELECT 3". */
  tag?: string;
  /** Rows from the tag (SELECT, INSERT, UPDATE, DELETE, COPY, FETCH, MOVE, MERGE). */
  rows?: number;
  /** Each statement's result, for a multi-statement simple query. */
  commands?: { tag: string; rows?: number }[];
  /** Set when `commands` stops short of the query's results (a cap per query). */
  commands_truncated?: boolean;
  /** The SQLSTATE of the ErrorResponse that ended it. */
  sqlstate?: string;
}

interface Statement {
  text: string;
  truncated: boolean;
  executions: number;
  /** What it counts against the budget: name and text bytes plus NAMED_ENTRY_BYTES. */
  bytes: number;
}

interface Portal {
  statement: string;
  bytes: number;
}

const SIMPLE = 0;
const EXECUTE = 1;
const SYNC = 2;
const FUNCTION = 3;

const IDLE = "I".charCodeAt(0);

interface Pending {
  kind: number;
  start: number;
  end: number;
  text: string;
  truncated: boolean;
  statement: string;
  execution: number;
  functionOid: number;
  /** The last CommandComplete tag of a simple query so far. */
  tag: string | undefined;
  /** Every command's result, kept only once a simple query has a second one (most have one). */
  commands: { tag: string; rows?: number }[] | undefined;
  commandsTruncated: boolean;
  sqlstate: string | undefined;
  /** What it counts against the pending budget. */
  bytes: number;
}

const commandOf = (tag: string): { tag: string; rows?: number } => {
  const rows = rowsOfTag(tag);
  return rows === undefined ? { tag } : { tag, rows };
};

const decoder = new TextDecoder();

/** Where the last `cstring()` stopped: just past the terminator (or the end of a truncated body). */
let cstringNext = 0;
/** Whether the last `cstring()` found its terminator (a capture cut short has none). */
let cstringComplete = true;

/**
 * Reads a cstring at `at`; the rest of the body when it has no terminator (a truncated capture). Returns
 * only the text (this runs for every query): the position after it is left in `cstringNext`.
 */
function cstring(body: Uint8Array, at: number): string {
  const end = body.indexOf(0, at);
  cstringComplete = end >= 0;
  cstringNext = end >= 0 ? end + 1 : body.length;
  // The unnamed statement and portal: most Binds and Executes name them, and a flood of Executes is read here.
  if (end === at) return "";
  return decoder.decode(body.subarray(at, end >= 0 ? end : body.length));
}

/** Tags whose last word is a row count (INSERT's is after the legacy OID: "INSERT 0 7"). */
const COUNTED_TAGS = new Set(["SELECT", "INSERT", "UPDATE", "DELETE", "COPY", "FETCH", "MOVE", "MERGE"]);

/** The row count in a CommandComplete tag ("SELECT 5" → 5), or undefined for tags without one. */
export function rowsOfTag(tag: string): number | undefined {
  const space = tag.indexOf(" ");
  if (space < 0 || !COUNTED_TAGS.has(tag.slice(0, space))) return undefined;
  let at = space + 1;
  if (tag.startsWith("INSERT")) {
    const oidEnd = tag.indexOf(" ", at);
    if (oidEnd < 0 || !isDigits(tag, at, oidEnd)) return undefined;
    at = oidEnd + 1;
  }
  return isDigits(tag, at, tag.length) ? Number(tag.slice(at)) : undefined;
}

function isDigits(text: string, from: number, to: number): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

export interface QueryTrackerOptions {
  /** Caps (defaults: DEFAULT_TRACKER_LIMITS). */
  limits?: Partial<TrackerLimits>;
  /** Told each time a cap stops the tracker from keeping something. */
  overflowed?: (what: AuditTrackingOverflow) => void;
}

const INITIAL_PENDING = 8;

export class QueryTracker implements TrackingUsage {
  readonly #statements = new Map<string, Statement>();
  readonly #portals = new Map<string, Portal>();
  /** Requests awaiting their answer: a ring whose capacity is a power of two, grown up to the cap. */
  #pending: (Pending | undefined)[] = new Array(INITIAL_PENDING).fill(undefined);
  #head = 0;
  #size = 0;
  #pendingBytes = 0;
  /** Past a request cap: nothing is queued until a ReadyForQuery answers every request sent. */
  #overflowing = false;
  /** ReadyForQuery frames owed to untracked Syncs, Queries and FunctionCalls. */
  #untrackedReadies = 0;
  /** Bytes of statements and portals (names, text, NAMED_ENTRY_BYTES each). */
  #namedBytes = 0;
  /** Set once a statement or portal was not kept: an unknown one may be one of them. */
  #forgotNames = false;
  #peakEntries = 0;
  #peakBytes = 0;
  readonly #emit: (event: QueryEvent) => void;
  readonly #now: () => number;
  readonly #maxText: number;
  readonly #limits: TrackerLimits;
  readonly #overflowed: (what: AuditTrackingOverflow) => void;
  /** Queries reported so far. */
  count = 0;

  /** `maxText`: characters of query text kept (longer text is cut and marked truncated). */
  constructor(
    emit: (event: QueryEvent) => void,
    maxText = Infinity,
    now: () => number = () => performance.now(),
    options: QueryTrackerOptions = {},
  ) {
    this.#emit = emit;
    this.#now = now;
    this.#maxText = maxText;
    this.#limits = { ...DEFAULT_TRACKER_LIMITS, ...options.limits };
    this.#overflowed = options.overflowed ?? (() => {});
  }

  /** Requests, statements and portals held. */
  get entries(): number {
    return this.#size + this.#statements.size + this.#portals.size;
  }

  get peakEntries(): number {
    return this.#peakEntries;
  }

  /** Bytes counted against the budgets: pending requests and their text, statements and portals. */
  get bytes(): number {
    return this.#pendingBytes + this.#namedBytes;
  }

  get peakBytes(): number {
    return this.#peakBytes;
  }

  #measure(): void {
    const entries = this.entries;
    if (entries > this.#peakEntries) this.#peakEntries = entries;
    const bytes = this.bytes;
    if (bytes > this.#peakBytes) this.#peakBytes = bytes;
  }

  /** Cuts text to the limit, so a session's memory does not grow with its statements' length. */
  #cut(text: string): string {
    return text.length > this.#maxText ? text.slice(0, this.#maxText) : text;
  }

  frontend(type: number, body: Uint8Array, truncated: boolean): void {
    switch (type) {
      case FRONTEND.QUERY: {
        const text = cstring(body, 0);
        this.#push(SIMPLE, this.#cut(text), truncated || !cstringComplete || text.length > this.#maxText, "", 0);
        break;
      }
      case FRONTEND.PARSE: {
        const name = cstring(body, 0);
        const nameBytes = cstringNext;
        const full = cstring(body, cstringNext);
        const cut = truncated || !cstringComplete || full.length > this.#maxText;
        const text = this.#cut(full);
        this.#forgetStatement(name);
        // A statement's text counts by its UTF-8 size in the body, at most; its name by its own.
        const bytes = NAMED_ENTRY_BYTES + nameBytes + Math.min(cstringNext - nameBytes, text.length * 3);
        if (!this.#roomForName(bytes)) {
          this.#overflow("statements");
          break;
        }
        this.#namedBytes += bytes;
        this.#statements.set(name, { text, truncated: cut, executions: 0, bytes });
        this.#measure();
        break;
      }
      case FRONTEND.BIND: {
        const portal = cstring(body, 0);
        const statement = cstring(body, cstringNext);
        this.#forgetPortal(portal);
        const bytes = NAMED_ENTRY_BYTES + cstringNext;
        if (!this.#roomForName(bytes)) {
          this.#overflow("portals");
          break;
        }
        this.#namedBytes += bytes;
        this.#portals.set(portal, { statement, bytes });
        this.#measure();
        break;
      }
      case FRONTEND.EXECUTE: {
        const portal = this.#portals.get(cstring(body, 0));
        const name = portal?.statement ?? "";
        const statement = portal || !this.#forgotNames ? this.#statements.get(name) : undefined;
        const execution = statement ? ++statement.executions : 0;
        const unknown = !statement && this.#forgotNames;
        this.#push(EXECUTE, statement?.text ?? "", statement?.truncated ?? unknown, name, execution);
        break;
      }
      case FRONTEND.CLOSE: {
        const name = cstring(body, 1);
        if (body[0] === "S".charCodeAt(0)) this.#forgetStatement(name);
        else this.#forgetPortal(name);
        break;
      }
      case FRONTEND.SYNC:
        this.#push(SYNC, "", false, "", 0);
        break;
      case FRONTEND.FUNCTION_CALL: {
        const item = this.#push(FUNCTION, "", false, "", 0);
        if (item && body.length >= 4) item.functionOid = new DataView(body.buffer, body.byteOffset).getUint32(0);
        break;
      }
    }
  }

  #roomForName(bytes: number): boolean {
    const limits = this.#limits;
    return this.#statements.size + this.#portals.size < limits.maxNamed && this.#namedBytes + bytes <= limits.maxNamedBytes;
  }

  #forgetStatement(name: string): void {
    const statement = this.#statements.get(name);
    if (!statement) return;
    this.#namedBytes -= statement.bytes;
    this.#statements.delete(name);
  }

  #forgetPortal(name: string): void {
    const portal = this.#portals.get(name);
    if (!portal) return;
    this.#namedBytes -= portal.bytes;
    this.#portals.delete(name);
  }

  #overflow(what: AuditTrackingOverflow): void {
    if (what === "statements" || what === "portals") this.#forgotNames = true;
    this.#overflowed(what);
  }

  /** Backend frame headers: the answers that carry no body we need. */
  backendFrame(type: number): void {
    if (type === BACKEND.READY_FOR_QUERY) {
      this.#ready();
      return;
    }
    const head = this.#peek();
    if (!head) return;
    switch (type) {
      case BACKEND.EMPTY_QUERY_RESPONSE:
        if (head.kind === EXECUTE) this.#finish({ tag: "" });
        else if (head.kind === SIMPLE) head.end = this.#now();
        break;
      case BACKEND.PORTAL_SUSPENDED:
        if (head.kind === EXECUTE) this.#finish({ tag: "(suspended)" });
        break;
    }
  }

  /** Captured backend bodies: CommandComplete, ErrorResponse and ReadyForQuery (after its `backendFrame`). */
  backend(type: number, body: Uint8Array): void {
    if (type === BACKEND.READY_FOR_QUERY) {
      // Out of any transaction: the server has dropped every portal.
      if (body[0] === IDLE && this.#portals.size > 0) {
        for (const portal of this.#portals.values()) this.#namedBytes -= portal.bytes;
        this.#portals.clear();
      }
      return;
    }
    const head = this.#peek();
    if (!head) return;
    if (type === BACKEND.COMMAND_COMPLETE) {
      const tag = cstring(body, 0);
      if (head.kind === EXECUTE) this.#finish({ tag });
      else if (head.kind === SIMPLE) {
        if (head.commands) {
          if (head.commands.length < this.#limits.maxCommands) head.commands.push(commandOf(tag));
          else if (!head.commandsTruncated) {
            head.commandsTruncated = true;
            this.#overflow("commands");
          }
        } else if (head.tag !== undefined) head.commands = [commandOf(head.tag), commandOf(tag)];
        head.tag = tag;
        head.end = this.#now();
      }
    } else if (type === BACKEND.ERROR_RESPONSE) {
      const sqlstate = decodeErrorFields(body).get("C") ?? "XX000";
      if (head.kind === EXECUTE) this.#finish({ sqlstate });
      else if (head.kind === SIMPLE || head.kind === FUNCTION) {
        head.sqlstate = sqlstate;
        head.end = this.#now();
      }
    }
  }

  #ready(): void {
    while (this.#peek()?.kind === EXECUTE) this.#shift(); // skipped after an error
    const head = this.#peek();
    if (head) {
      if (head.kind === SIMPLE || head.kind === FUNCTION) this.#finish({});
      else this.#shift();
    } else if (this.#untrackedReadies > 0) this.#untrackedReadies--;
    if (this.#overflowing && this.#size === 0 && this.#untrackedReadies === 0) this.#overflowing = false;
  }

  #peek(): Pending | undefined {
    return this.#size > 0 ? this.#pending[this.#head] : undefined;
  }

  #shift(): Pending {
    const item = this.#pending[this.#head]!;
    this.#pending[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#pending.length - 1);
    this.#size--;
    this.#pendingBytes -= item.bytes;
    return item;
  }

  #push(kind: number, text: string, truncated: boolean, statement: string, execution: number): Pending | undefined {
    // An Execute's text is its statement's (already counted); a simple query's is its own.
    const bytes = PENDING_ENTRY_BYTES + (kind === SIMPLE ? text.length * 2 : 0);
    const limits = this.#limits;
    if (this.#overflowing || this.#size === limits.maxPending || this.#pendingBytes + bytes > limits.maxPendingBytes) {
      this.#overflowing = true;
      if (kind !== EXECUTE) this.#untrackedReadies++;
      this.#overflowed("requests");
      return undefined;
    }
    if (this.#size === this.#pending.length) this.#grow();
    const item: Pending = {
      kind,
      start: this.#now(),
      end: 0,
      text,
      truncated,
      statement,
      execution,
      functionOid: 0,
      tag: undefined,
      commands: undefined,
      commandsTruncated: false,
      sqlstate: undefined,
      bytes,
    };
    this.#pending[(this.#head + this.#size) & (this.#pending.length - 1)] = item;
    this.#size++;
    this.#pendingBytes += bytes;
    this.#measure();
    return item;
  }

  /** Doubles the ring, keeping the queue's order. */
  #grow(): void {
    const old = this.#pending;
    const ring: (Pending | undefined)[] = new Array(old.length * 2).fill(undefined);
    for (let i = 0; i < this.#size; i++) ring[i] = old[(this.#head + i) & (old.length - 1)];
    this.#pending = ring;
    this.#head = 0;
  }

  #finish(result: { tag?: string; sqlstate?: string }): void {
    const item = this.#shift();
    const end = item.end || this.#now();
    const duration_ms = Math.round((end - item.start) * 1000) / 1000;
    const event: QueryEvent = item.kind === FUNCTION
      ? { protocol: "function_call", function_oid: item.functionOid, duration_ms }
      : { protocol: item.kind === SIMPLE ? "simple" : "extended", text: item.text, duration_ms };
    if (item.truncated) event.text_truncated = true;
    if (item.kind === EXECUTE) {
      event.statement = item.statement;
      event.execution = item.execution;
    }
    const tag = result.tag ?? item.tag;
    if (tag !== undefined) {
      event.tag = tag;
      const rows = rowsOfTag(tag);
      if (rows !== undefined) event.rows = rows;
    }
    if (item.commands) event.commands = item.commands;
    if (item.commandsTruncated) event.commands_truncated = true;
    const sqlstate = result.sqlstate ?? item.sqlstate;
    if (sqlstate !== undefined) event.sqlstate = sqlstate;
    this.count++;
    this.#emit(event);
  }
}
