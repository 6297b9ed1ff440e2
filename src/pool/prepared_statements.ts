/**
 * Protocol-level prepared statements in transaction pooling, per client: the client names its statements as
 * it likes; each server connection knows them by content as `pgrelay_<id>` (StatementRegistry), and a client
 * may meet a different server connection at every transaction. For each client frame, `frontend()` sends the
 * server what it needs in the client's stead and queues what the client is owed (RequestQueue), so the client
 * sees exactly what one PostgreSQL session would have answered.
 *
 * - Parse of a named statement: mapped by content; if the server already has it, pgrelay answers
 *   ParseComplete itself (a hit), else it sends the Parse renamed. A name the client already uses gets
 *   ERROR 42P05 "prepared statement "x" already exists", as PostgreSQL answers (25P02 in a failed
 *   transaction, as PostgreSQL checks that first), and the client's messages up to its Sync are dropped, as
 *   the server would skip them. It never disconnects the client (PgBouncer #1118).
 * - Bind / Describe of a named statement: renamed; when the server lacks the statement, its Parse is sent
 *   first and the ParseComplete swallowed (Describe too: Supavisor #1174). Names the client never prepared
 *   pass unchanged, so the server answers 26000 as it would have.
 * - Close of a named statement: answered CloseComplete by pgrelay; the server keeps the shared statement.
 * - Each server keeps at most `capacity` statements (ServerStatements): making room sends a Close of the least
 *   recently used one first and swallows its CloseComplete.
 * - The unnamed statement stays unnamed on the server (no rename: its custom plans and its life until the
 *   next Parse are unchanged, and its frames pass untouched). pgrelay keeps a copy of the client's last
 *   unnamed Parse and records which client's unnamed statement each server holds; a Bind or Describe of ""
 *   that lands on a server holding another one (after a Sync moved the client: PgBouncer #1288) sends that
 *   Parse first. A client without one (after a failed Parse, a Close of "", a simple Query) gets the server's
 *   unnamed statement closed first, so the server answers 26000 as it would have.
 * - A simple Query that is exactly `DEALLOCATE name` of a protocol statement is answered by pgrelay
 *   (CommandComplete DEALLOCATE; 25P02 in a failed transaction); `DEALLOCATE ALL` and `DISCARD ALL` go to
 *   the server and empty the client's map and the server's list. Every such change is applied when the
 *   frame is read, so later pipelined frames see it (PgBouncer #1535: mappings made after a pipelined
 *   DEALLOCATE ALL survive), and undone if the server fails or skips the request.
 *
 * Mappings are optimistic: a Parse maps its name at once, and the RequestQueue's settlement removes it if the
 * server fails or skips the Parse. Known differences from one PostgreSQL session, all after an error in the
 * same pipeline: a re-Parse of a name whose first Parse is still unanswered is refused with 42P05 even if that
 * first Parse then fails; an unnamed Parse skipped after an error leaves the client without an unnamed
 * statement (PostgreSQL keeps the previous one).
 */
import { bindStatementEnd, bindStatementStart, encodeBindHead } from "../protocol/bind_message.ts";
import { FRONTEND } from "../protocol/codes.ts";
import { encodeClose } from "../protocol/close_message.ts";
import { TARGET } from "../protocol/describe_message.ts";
import { encodeErrorResponse } from "../protocol/error_response.ts";
import { parseStatementEnd } from "../protocol/parse_message.ts";
import { ProtocolError } from "../protocol/protocol_error.ts";
import { SQLSTATE, type SqlState } from "../protocol/sqlstate.ts";
import { readDeallocate } from "./_deallocate.ts";
import { OUTCOME, type Outcome, REQUEST, type RequestKind, type RequestListener, type RequestQueue } from "./request_queue.ts";
import type { ServerStatements } from "./server_statements.ts";
import { closeStatementFrame, type Statement, type StatementRegistry } from "./statement_registry.ts";

/** What the relay does with the client's frame after `frontend()`. */
export const ACTION = {
  /** Send the client's frame unchanged (after the frames `send` got during the call, if any). */
  FORWARD: 0,
  /** Do not send the client's frame (the frames `send` got, if any, stand in for it). */
  DROP: 1,
  /**
   * The last frame `send` got is the new head of the client's frame: send the client's frame from body offset
   * `replacedBodyBytes` on after it (a Bind renamed without copying its parameters).
   */
  REPLACE_HEAD: 2,
  /**
   * Nothing was done: hold this frame (and the client's frames after it: stop reading the client) and call
   * frontend() with it again once the server's next replies have gone through RequestQueue.backend(). Only a
   * Parse that reuses a name whose earlier Parse, sent before a Sync, is still unanswered: whether it is a
   * duplicate (42P05) depends on that answer.
   */
  WAIT: 3,
} as const;
export type Action = typeof ACTION[keyof typeof ACTION];

/** Named statements one client may hold by default. */
export const MAX_CLIENT_STATEMENTS = 10_000;

export interface PreparedStatementsOptions {
  registry: StatementRegistry;
  queue: RequestQueue;
  /** Receives, in order, each frame to send the server in the client's stead. */
  send: (frame: Uint8Array) => void;
  /** Named statements this client may hold (default MAX_CLIENT_STATEMENTS); more get ERROR 53400. */
  maxStatements?: number;
}

const CLOSE_UNNAMED = encodeClose(TARGET.STATEMENT, "");

type Op =
  | { kind: "parse"; name: string; statement: Statement; server: ServerStatements; sent: boolean; syncs: number }
  | { kind: "server_parse"; id: number; server: ServerStatements }
  | { kind: "unnamed_parse"; version: number; server: ServerStatements; own: boolean }
  | { kind: "evict"; id: number; server: ServerStatements }
  | { kind: "close_unnamed"; server: ServerStatements }
  | { kind: "forget"; name: string; statement: Statement }
  | { kind: "forget_all"; named: Map<string, Statement>; ids: number[]; server: ServerStatements };

export class PreparedStatements implements RequestListener {
  readonly #registry: StatementRegistry;
  readonly #queue: RequestQueue;
  readonly #send: (frame: Uint8Array) => void;
  readonly #max: number;
  #named = new Map<string, Statement>();
  /** A copy of the client's current unnamed Parse frame; undefined when it has none (or it was too long). */
  #unnamed: Uint8Array | undefined;
  #unnamedVersion = 0;
  #server: ServerStatements | undefined;
  /** pgrelay answered an error itself: drop the client's messages until its Sync, as the server would. */
  #skipping = false;
  /** Named Parses not answered yet: name → Syncs sent before it. */
  readonly #pendingParses = new Map<string, number>();
  #syncs = 0;
  readonly #ops = new Map<number, Op>();
  #nextTag = 1;
  /** After REPLACE_HEAD: where the rest of the client's frame body starts. */
  replacedBodyBytes = 0;

  constructor(options: PreparedStatementsOptions) {
    this.#registry = options.registry;
    this.#queue = options.queue;
    this.#send = options.send;
    this.#max = options.maxStatements ?? MAX_CLIENT_STATEMENTS;
    this.#queue.listener = this;
  }

  /** Named statements the client holds. */
  get size(): number {
    return this.#named.size;
  }

  /** The server-side id the client's statement `name` maps to, or undefined (tests, admin). */
  statementId(name: string): number | undefined {
    return this.#named.get(name)?.id;
  }

  /** The client now holds `server` (a transaction starts). */
  attach(server: ServerStatements): void {
    this.#server = server;
    server.beginCheckout();
  }

  /** The client gives its server back (RequestQueue.releasable was true, or the queue was cleared). */
  detach(): void {
    this.#server = undefined;
  }

  /** The client has left: its names stop holding the pool's statements. */
  dispose(): void {
    for (const statement of this.#named.values()) this.#registry.release(statement);
    this.#named.clear();
  }

  /**
   * Handles one client frame on the attached server: `body` is the frame after its 5-byte header, or its head
   * when longer than the relay captures, with `bodyLength` the whole body's length. Frames to send go to
   * `send`; the return value says what to do with the client's own frame. Replies owed come out of
   * RequestQueue.nextLocal(). Needs `queue.room >= 4`. Throws ProtocolError on a malformed frame.
   */
  frontend(type: number, body: Uint8Array, bodyLength = body.length): Action {
    if (type === FRONTEND.SYNC) this.#syncs++;
    if (this.#skipping) {
      if (type === FRONTEND.SYNC) {
        this.#skipping = false;
        this.#queue.frontend(type);
        return ACTION.FORWARD;
      }
      return type === FRONTEND.FLUSH ? ACTION.FORWARD : ACTION.DROP;
    }
    if (this.#queue.skipping && type !== FRONTEND.SYNC) {
      this.#queue.frontend(type); // the server ignores it: nothing to map
      return ACTION.FORWARD;
    }
    switch (type) {
      case FRONTEND.PARSE:
        return this.#parse(body, bodyLength);
      case FRONTEND.BIND:
        return this.#bind(body, bodyLength);
      case FRONTEND.DESCRIBE:
        return this.#describe(body);
      case FRONTEND.CLOSE:
        return this.#close(body);
      case FRONTEND.QUERY:
        return this.#query(body, bodyLength > body.length);
      default:
        this.#queue.frontend(type);
        return ACTION.FORWARD;
    }
  }

  settled(kind: RequestKind, tag: number, outcome: Outcome): void {
    const op = this.#ops.get(tag);
    if (op === undefined) return;
    this.#ops.delete(tag);
    switch (op.kind) {
      case "parse":
        if (this.#pendingParses.get(op.name) === op.syncs) this.#pendingParses.delete(op.name);
        if (outcome !== OUTCOME.OK) {
          if (op.sent) op.server.delete(op.statement.id);
          this.#unmap(op.name, op.statement);
        }
        break;
      case "server_parse":
        if (outcome !== OUTCOME.OK) op.server.delete(op.id);
        break;
      case "unnamed_parse":
        if (outcome === OUTCOME.OK) break;
        if (!op.own && op.version === this.#unnamedVersion) this.#unnamed = undefined;
        if (op.server.unnamedOwner === this && op.server.unnamedVersion === op.version) {
          // A failed Parse of "" has dropped the server's unnamed statement; a skipped one left the old one.
          op.server.unnamedOwner = outcome === OUTCOME.FAILED ? null : undefined;
        }
        break;
      case "evict":
        if (outcome === OUTCOME.SKIPPED && !op.server.has(op.id)) op.server.use(op.id); // still there
        break;
      case "close_unnamed":
        if (outcome === OUTCOME.SKIPPED && op.server.unnamedOwner === null) op.server.unnamedOwner = undefined;
        break;
      case "forget":
        if (outcome === OUTCOME.OK || this.#named.has(op.name)) this.#registry.release(op.statement);
        else this.#named.set(op.name, op.statement); // PostgreSQL did not drop it
        break;
      case "forget_all":
        for (const [name, statement] of op.named) {
          if (outcome === OUTCOME.OK || this.#named.has(name)) this.#registry.release(statement);
          else this.#named.set(name, statement);
        }
        if (outcome !== OUTCOME.OK) for (const id of op.ids) if (!op.server.has(id)) op.server.use(id);
        break;
    }
    void kind;
  }

  #serverOrThrow(): ServerStatements {
    const server = this.#server;
    if (server === undefined) throw new Error("PreparedStatements.frontend() needs an attached server connection");
    return server;
  }

  #tag(op: Op): number {
    const tag = this.#nextTag;
    this.#nextTag = tag === 0x7fff_ffff ? 1 : tag + 1;
    this.#ops.set(tag, op);
    return tag;
  }

  #parse(body: Uint8Array, bodyLength: number): Action {
    const server = this.#serverOrThrow();
    const nameEnd = parseStatementEnd(body);
    const whole = bodyLength === body.length;
    if (nameEnd === 0) {
      const version = ++this.#unnamedVersion;
      this.#unnamed = whole ? frameOf(FRONTEND.PARSE, body) : undefined;
      server.unnamedOwner = this;
      server.unnamedVersion = version;
      this.#queue.enqueue(REQUEST.PARSE, this.#tag({ kind: "unnamed_parse", version, server, own: false }));
      return ACTION.FORWARD;
    }
    const name = decodeName(body, 0, nameEnd);
    if (this.#named.has(name)) {
      // Not known yet whether the earlier Parse made it; before its Sync, a failure would skip this one anyway.
      const pending = this.#pendingParses.get(name);
      if (pending !== undefined && pending < this.#syncs) return ACTION.WAIT;
      return this.#fail(SQLSTATE.DUPLICATE_PREPARED_STATEMENT, `prepared statement "${name}" already exists`);
    }
    if (!whole) {
      return this.#fail(SQLSTATE.PROGRAM_LIMIT_EXCEEDED, `prepared statement "${name}" is too long for pgrelay (${bodyLength} bytes, more than ${body.length})`);
    }
    if (this.#named.size >= this.#max) {
      return this.#fail(SQLSTATE.CONFIGURATION_LIMIT_EXCEEDED, `too many prepared statements in this session (pgrelay allows ${this.#max})`);
    }
    const statement = this.#registry.acquire(body.subarray(nameEnd + 1));
    this.#named.set(name, statement);
    const syncs = this.#syncs;
    this.#pendingParses.set(name, syncs);
    if (server.has(statement.id)) {
      // RequestQueue answers 25P02 instead if the transaction has failed by the time this is answered.
      this.#registry.hits++;
      server.use(statement.id);
      this.#queue.enqueue(REQUEST.LOCAL_PARSE_COMPLETE, this.#tag({ kind: "parse", name, statement, server, sent: false, syncs }));
      return ACTION.DROP;
    }
    this.#registry.misses++;
    this.#makeRoom(server);
    this.#send(statement.parse);
    server.use(statement.id);
    this.#queue.enqueue(REQUEST.PARSE, this.#tag({ kind: "parse", name, statement, server, sent: true, syncs }));
    return ACTION.DROP;
  }

  #bind(body: Uint8Array, bodyLength: number): Action {
    const server = this.#serverOrThrow();
    const start = bindStatementStart(body);
    const end = bindStatementEnd(body, start);
    if (start === end) {
      this.#ensureUnnamed(server);
      this.#queue.enqueue(REQUEST.BIND);
      return ACTION.FORWARD;
    }
    const statement = this.#named.get(decodeName(body, start, end));
    if (statement === undefined) {
      this.#queue.enqueue(REQUEST.BIND); // the server answers 26000, as it would have
      return ACTION.FORWARD;
    }
    this.#ensure(server, statement);
    this.#send(encodeBindHead(body, bodyLength, start, end, statement.name));
    this.replacedBodyBytes = end + 1;
    this.#queue.enqueue(REQUEST.BIND);
    return ACTION.REPLACE_HEAD;
  }

  #describe(body: Uint8Array): Action {
    const server = this.#serverOrThrow();
    const end = targetNameEnd(body, "Describe");
    if (body[0] === TARGET.PORTAL) {
      this.#queue.enqueue(REQUEST.DESCRIBE);
      return ACTION.FORWARD;
    }
    if (end === 1) {
      this.#ensureUnnamed(server);
      this.#queue.enqueue(REQUEST.DESCRIBE);
      return ACTION.FORWARD;
    }
    const statement = this.#named.get(decodeName(body, 1, end));
    if (statement === undefined) {
      this.#queue.enqueue(REQUEST.DESCRIBE);
      return ACTION.FORWARD;
    }
    this.#ensure(server, statement);
    this.#send(statement.describe);
    this.#queue.enqueue(REQUEST.DESCRIBE);
    return ACTION.DROP;
  }

  #close(body: Uint8Array): Action {
    const server = this.#serverOrThrow();
    const end = targetNameEnd(body, "Close");
    if (body[0] === TARGET.PORTAL) {
      this.#queue.enqueue(REQUEST.CLOSE);
      return ACTION.FORWARD;
    }
    if (end === 1) {
      this.#unnamed = undefined;
      this.#unnamedVersion++;
      server.unnamedOwner = null;
      this.#queue.enqueue(REQUEST.CLOSE);
      return ACTION.FORWARD;
    }
    const name = decodeName(body, 1, end);
    const statement = this.#named.get(name);
    if (statement === undefined) {
      this.#queue.enqueue(REQUEST.LOCAL_CLOSE_COMPLETE); // closing what does not exist is no error
      return ACTION.DROP;
    }
    this.#named.delete(name);
    this.#queue.enqueue(REQUEST.LOCAL_CLOSE_COMPLETE, this.#tag({ kind: "forget", name, statement }));
    return ACTION.DROP;
  }

  #query(body: Uint8Array, truncated: boolean): Action {
    const server = this.#serverOrThrow();
    // A simple Query drops the unnamed statement: the client's, and the server's when it gets the Query.
    this.#unnamed = undefined;
    this.#unnamedVersion++;
    const command = truncated ? undefined : readDeallocate(body);
    if (command === undefined) {
      server.unnamedOwner = null;
      this.#queue.frontend(FRONTEND.QUERY);
      return ACTION.FORWARD;
    }
    if (!command.all) {
      const statement = this.#named.get(command.name);
      if (statement === undefined) {
        server.unnamedOwner = null;
        this.#queue.frontend(FRONTEND.QUERY); // an SQL-level PREPARE, or nothing: the server answers
        return ACTION.FORWARD;
      }
      this.#named.delete(command.name);
      this.#queue.enqueue(REQUEST.LOCAL_DEALLOCATE, this.#tag({ kind: "forget", name: command.name, statement }));
      return ACTION.DROP;
    }
    const named = this.#named;
    this.#named = new Map();
    const ids = server.clear();
    server.unnamedOwner = null;
    this.#queue.enqueue(REQUEST.QUERY, this.#tag({ kind: "forget_all", named, ids, server }));
    return ACTION.FORWARD;
  }

  /** Prepares `statement` on the server first when it lacks it. */
  #ensure(server: ServerStatements, statement: Statement): void {
    if (server.has(statement.id)) {
      this.#registry.hits++;
      server.use(statement.id);
      return;
    }
    this.#registry.misses++;
    this.#makeRoom(server);
    this.#send(statement.parse);
    server.use(statement.id);
    this.#queue.enqueue(REQUEST.OWN_PARSE, this.#tag({ kind: "server_parse", id: statement.id, server }));
  }

  #ensureUnnamed(server: ServerStatements): void {
    if (server.unnamedOwner === this && server.unnamedVersion === this.#unnamedVersion) return;
    if (this.#unnamed !== undefined) {
      this.#registry.misses++;
      this.#send(this.#unnamed);
      server.unnamedOwner = this;
      server.unnamedVersion = this.#unnamedVersion;
      this.#queue.enqueue(REQUEST.OWN_PARSE, this.#tag({ kind: "unnamed_parse", version: this.#unnamedVersion, server, own: true }));
    } else if (server.unnamedOwner !== null) {
      this.#send(CLOSE_UNNAMED);
      server.unnamedOwner = null;
      this.#queue.enqueue(REQUEST.OWN_CLOSE, this.#tag({ kind: "close_unnamed", server }));
    }
  }

  /** Closes least recently used statements while the server is at its cap (at most two per call). */
  #makeRoom(server: ServerStatements): void {
    for (let i = 0; i < 2 && server.size >= server.capacity; i++) {
      const victim = server.victim();
      if (victim < 0) return;
      this.#registry.evictions++;
      this.#evict(server, victim);
    }
  }

  #evict(server: ServerStatements, id: number): void {
    this.#send(closeStatementFrame(id));
    server.delete(id);
    this.#queue.enqueue(REQUEST.OWN_CLOSE, this.#tag({ kind: "evict", id, server }));
  }

  #unmap(name: string, statement: Statement): void {
    if (this.#named.get(name) === statement) this.#named.delete(name);
    this.#registry.release(statement);
  }

  /**
   * Answers a Parse with an error in order (25P02 instead if the transaction has failed by then, as
   * PostgreSQL checks that first) and drops the client's messages up to its Sync, as the server would.
   */
  #fail(code: SqlState, message: string): Action {
    this.#queue.enqueueLocalError(encodeErrorResponse({ severity: "ERROR", code, message }));
    this.#skipping = true;
    return ACTION.DROP;
  }
}

const nameDecoder = new TextDecoder();

/** Statement names are short and mostly ASCII: skip TextDecoder for those. */
function decodeName(body: Uint8Array, start: number, end: number): string {
  if (end - start > 64) return nameDecoder.decode(body.subarray(start, end));
  let name = "";
  for (let i = start; i < end; i++) {
    const b = body[i]!;
    if (b >= 0x80) return nameDecoder.decode(body.subarray(start, end));
    name += String.fromCharCode(b);
  }
  return name;
}

/** The NUL ending the name of a Describe or Close body, after checking its target byte. */
function targetNameEnd(body: Uint8Array, message: string): number {
  const kind = body[0];
  if (kind !== TARGET.STATEMENT && kind !== TARGET.PORTAL) throw new ProtocolError(`malformed ${message}: invalid target ${kind ?? "(none)"}`);
  const end = body.indexOf(0, 1);
  if (end < 0) throw new ProtocolError(`malformed ${message}: unterminated name`);
  return end;
}

/** A copy of the whole frame whose body is `body`. */
function frameOf(type: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + body.length);
  const length = body.length + 4;
  frame[0] = type;
  frame[1] = (length >>> 24) & 255;
  frame[2] = (length >>> 16) & 255;
  frame[3] = (length >>> 8) & 255;
  frame[4] = length & 255;
  frame.set(body, 5);
  return frame;
}
