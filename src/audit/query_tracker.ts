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
 */
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
/** Backend frames whose body the tracker reads (`backend`). */
export const TRACKED_BACKEND_BODIES = lookup([BACKEND.COMMAND_COMPLETE, BACKEND.ERROR_RESPONSE]);

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
  /** The SQLSTATE of the ErrorResponse that ended it. */
  sqlstate?: string;
}

interface Statement {
  text: string;
  truncated: boolean;
  executions: number;
}

const SIMPLE = 0;
const EXECUTE = 1;
const SYNC = 2;
const FUNCTION = 3;

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
  sqlstate: string | undefined;
}

const commandOf = (tag: string): { tag: string; rows?: number } => {
  const rows = rowsOfTag(tag);
  return rows === undefined ? { tag } : { tag, rows };
};

/** Requests not yet answered; more means a client that pipelines without reading, and we stop tracking. */
const MAX_PENDING = 10_000;
/** Prepared statements remembered per session, and the characters of their text kept in all. */
const MAX_STATEMENTS = 10_000;
const MAX_STATEMENT_CHARS = 1 << 20;

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

export class QueryTracker {
  readonly #statements = new Map<string, Statement>();
  readonly #portals = new Map<string, string>();
  readonly #pending: Pending[] = [];
  readonly #emit: (event: QueryEvent) => void;
  readonly #now: () => number;
  readonly #maxText: number;
  #statementChars = 0;
  /** Queries reported so far. */
  count = 0;

  /** `maxText`: characters of query text kept (longer text is cut and marked truncated). */
  constructor(
    emit: (event: QueryEvent) => void,
    maxText = Infinity,
    now: () => number = () => performance.now(),
  ) {
    this.#emit = emit;
    this.#now = now;
    this.#maxText = maxText;
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
        const full = cstring(body, cstringNext);
        let cut = truncated || !cstringComplete || full.length > this.#maxText;
        let text = this.#cut(full);
        const previous = this.#statements.get(name);
        if (!previous && this.#statements.size >= MAX_STATEMENTS) break;
        this.#statementChars -= previous?.text.length ?? 0;
        if (this.#statementChars + text.length > MAX_STATEMENT_CHARS) [text, cut] = ["", true];
        this.#statementChars += text.length;
        this.#statements.set(name, { text, truncated: cut, executions: 0 });
        break;
      }
      case FRONTEND.BIND: {
        const portal = cstring(body, 0);
        this.#portals.set(portal, cstring(body, cstringNext));
        break;
      }
      case FRONTEND.EXECUTE: {
        const name = this.#portals.get(cstring(body, 0)) ?? "";
        const statement = this.#statements.get(name);
        const execution = statement ? ++statement.executions : 0;
        this.#push(EXECUTE, statement?.text ?? "", statement?.truncated ?? false, name, execution);
        break;
      }
      case FRONTEND.CLOSE: {
        const name = cstring(body, 1);
        if (body[0] === "S".charCodeAt(0)) {
          this.#statementChars -= this.#statements.get(name)?.text.length ?? 0;
          this.#statements.delete(name);
        } else this.#portals.delete(name);
        break;
      }
      case FRONTEND.SYNC:
        this.#push(SYNC, "", false, "", 0);
        break;
      case FRONTEND.FUNCTION_CALL:
        this.#push(FUNCTION, "", false, "", 0);
        if (body.length >= 4) this.#pending.at(-1)!.functionOid = new DataView(body.buffer, body.byteOffset).getUint32(0);
        break;
    }
  }

  /** Backend frame headers: the answers that carry no body we need. */
  backendFrame(type: number): void {
    const head = this.#pending[0];
    if (!head) return;
    switch (type) {
      case BACKEND.EMPTY_QUERY_RESPONSE:
        if (head.kind === EXECUTE) this.#finish({ tag: "" });
        else if (head.kind === SIMPLE) head.end = this.#now();
        break;
      case BACKEND.PORTAL_SUSPENDED:
        if (head.kind === EXECUTE) this.#finish({ tag: "(suspended)" });
        break;
      case BACKEND.READY_FOR_QUERY:
        while (this.#pending[0]?.kind === EXECUTE) this.#pending.shift(); // skipped after an error
        if (this.#pending[0]?.kind === SIMPLE || this.#pending[0]?.kind === FUNCTION) this.#finish({});
        else if (this.#pending[0]?.kind === SYNC) this.#pending.shift();
        break;
    }
  }

  /** Captured backend bodies: CommandComplete and ErrorResponse. */
  backend(type: number, body: Uint8Array): void {
    const head = this.#pending[0];
    if (!head) return;
    if (type === BACKEND.COMMAND_COMPLETE) {
      const tag = cstring(body, 0);
      if (head.kind === EXECUTE) this.#finish({ tag });
      else if (head.kind === SIMPLE) {
        if (head.commands) head.commands.push(commandOf(tag));
        else if (head.tag !== undefined) head.commands = [commandOf(head.tag), commandOf(tag)];
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

  #push(kind: number, text: string, truncated: boolean, statement: string, execution: number): void {
    if (this.#pending.length >= MAX_PENDING) this.#pending.shift();
    this.#pending.push({
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
      sqlstate: undefined,
    });
  }

  #finish(result: { tag?: string; sqlstate?: string }): void {
    const item = this.#pending.shift()!;
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
    const sqlstate = result.sqlstate ?? item.sqlstate;
    if (sqlstate !== undefined) event.sqlstate = sqlstate;
    this.count++;
    this.#emit(event);
  }
}
