/**
 * A session's state as transaction pooling must carry it: the settings a client has made (to replay on the
 * next server it borrows) and the state that pins it to its server (pin_reasons.ts).
 *
 * Feed it what passes, in order: the client's requests as they go to the server ({@link query},
 * {@link parse}, {@link bind}, {@link execute}, {@link sync}, {@link close}, {@link functionCall}) and the
 * server's replies as they come back ({@link parameterStatus}, {@link commandComplete}, {@link emptyQuery},
 * {@link portalSuspended}, {@link error}, {@link ready}). A statement's effect counts only when its
 * CommandComplete arrives, and settings only once its transaction commits.
 *
 * Reported settings (ParameterStatus) are taken from the server, never from statement text: the server
 * sends their value after every change, ROLLBACK and function SET clauses included. Unreported ones
 * (search_path before PostgreSQL 18, statement_timeout, work_mem...) are read from SET, RESET, RESET ALL,
 * DISCARD ALL and `SELECT set_config(name, value, false)`, and kept when their transaction commits.
 * Transactions: implicit (one simple Query, or the extended-protocol messages up to Sync) and explicit
 * (BEGIN ... COMMIT / ROLLBACK, AND CHAIN), savepoints (SAVEPOINT, RELEASE, ROLLBACK TO), PREPARE
 * TRANSACTION (keeps settings, as the server does).
 * https://www.postgresql.org/docs/current/protocol-flow.html
 */
import { TRANSACTION_STATUS } from "../protocol/codes.ts";
import { SessionSnapshot } from "./_session_snapshot.ts";
import { flattenSetting, replaysReported, settingElements } from "./guc_settings.ts";
import { PIN_REASON_NAMES, type PinReason } from "./pin_reasons.ts";
import { IMMEDIATE_OPS, sessionCommands, type SessionOp } from "./session_commands.ts";
import { quoteLiteral, quoteSettingName } from "./sql_quote.ts";
import { lowerAscii } from "./sql_statements.ts";

/** What {@link SessionState.replayFor} compares: a client's session, or a server connection's. */
export interface SettingsView {
  /** Reported settings, lower-cased name → the value of the latest ParameterStatus. */
  readonly reported: ReadonlyMap<string, string>;
  /**
   * Unreported settings that differ from the connection's defaults (its values after RESET), lower-cased
   * name → value as the server stores it. A name that is absent has its default.
   */
  readonly settings: ReadonlyMap<string, string>;
}

export interface SessionStateOptions {
  /** ParameterStatus values the session has already seen (at login), by the names the server sends. */
  parameters?: Iterable<readonly [string, string]>;
  /**
   * Settings the connection's startup packet made: its parameters other than user, database, options and
   * replication, then the `-c name=value` settings of `options`. Unreported ones are where RESET and
   * RESET ALL return to; reported ones are ignored (their ParameterStatus says what they are).
   */
  startup?: Iterable<readonly [string, string]>;
  /** Called when a pin reason starts (`held` true: count it in pgrelay_pool_pinned_total) or ends. */
  onPinChange?: (reason: PinReason, held: boolean) => void;
}

/** What each request in flight waits for. */
const UNIT = { QUERY: 0, EXECUTE: 1, SYNC: 2, FUNCTION_CALL: 3 } as const;
type UnitKind = typeof UNIT[keyof typeof UNIT];

interface Unit {
  readonly kind: UnitKind;
  /** QUERY: the operations of each statement, in order; EXECUTE: one entry. */
  readonly statements: readonly (readonly SessionOp[])[];
  /** QUERY: the next statement to complete. */
  next: number;
}

const frozen = (kind: UnitKind): Unit => Object.freeze({ kind, statements: Object.freeze([]), next: 0 });
/** Shared units for requests without operations (most of them): nothing allocated per request. */
const PLAIN_QUERY = frozen(UNIT.QUERY);
const PLAIN_EXECUTE = frozen(UNIT.EXECUTE);
const SYNC_UNIT = frozen(UNIT.SYNC);
const CALL_UNIT = frozen(UNIT.FUNCTION_CALL);

/** A transaction, or a savepoint in it: the operations that wait for it to commit. */
interface Layer {
  readonly name: string | null;
  ops: SessionOp[];
}

/** Requests in flight past this many are not tracked one by one (see {@link SessionState.overflowed}). */
export const MAX_TRACKED_REQUESTS = 10_000;
/** Named statements with session operations (SET, LISTEN...) tracked at once; past it, {@link SessionState.overflowed}. */
export const MAX_TRACKED_STATEMENTS = 1_000;

/** Reported settings that change with the session's role: a change not made by a tracked statement pins. */
const IDENTITY_SETTINGS: readonly string[] = ["session_authorization", "is_superuser"];

export class SessionState implements SettingsView {
  readonly #reported = new Map<string, string>();
  readonly #baseline: ReadonlyMap<string, string>;
  readonly #onPinChange: ((reason: PinReason, held: boolean) => void) | undefined;
  #committed: SessionSnapshot;
  #layers: Layer[] = [];
  #inBlock = false;
  #queue: Unit[] = [];
  #head = 0;
  /** Prepared statements and portals whose text has operations (the others are not kept). */
  readonly #statements = new Map<string, readonly SessionOp[]>();
  readonly #portals = new Map<string, readonly SessionOp[]>();
  /** Pin reasons held now → the order they started in. */
  readonly #held = new Map<PinReason, number>();
  #pinSequence = 0;
  /** session_authorization and is_superuser as at login: a later difference means the role changed. */
  readonly #identity = new Map<string, string>();
  #roleDrift = false;
  #overflowed = false;
  readonly #isReported = (name: string) => this.#reported.has(name);

  constructor(options: SessionStateOptions = {}) {
    this.#onPinChange = options.onPinChange;
    for (const [name, value] of options.parameters ?? []) this.#reported.set(lowerAscii(name), value);
    for (const name of IDENTITY_SETTINGS) {
      const value = this.#reported.get(name);
      if (value !== undefined) this.#identity.set(name, value);
    }
    const baseline = new Map<string, string>();
    for (const [rawName, value] of options.startup ?? []) {
      const name = lowerAscii(rawName);
      if (!this.#reported.has(name)) baseline.set(name, value);
    }
    this.#baseline = baseline;
    this.#committed = new SessionSnapshot(baseline);
  }

  // ---- what the session holds ------------------------------------------------------------------

  get reported(): ReadonlyMap<string, string> {
    return this.#reported;
  }

  /** Committed unreported settings (what a borrowed server must get); see {@link SettingsView.settings}. */
  get settings(): ReadonlyMap<string, string> {
    return this.#committed.settings;
  }

  /** The pin reason that started first among those held now, or null when the client is free to move. */
  get pinned(): PinReason | null {
    let first: PinReason | null = null;
    let order = Infinity;
    for (const [reason, since] of this.#held) {
      if (since < order) [first, order] = [reason, since];
    }
    return first;
  }

  /** Every pin reason held now, in table order. */
  get pinReasons(): PinReason[] {
    return PIN_REASON_NAMES.filter((reason) => this.#held.has(reason));
  }

  /** True inside an explicit transaction block (as far as the replies so far tell). */
  get inTransaction(): boolean {
    return this.#inBlock;
  }

  /**
   * True once more than {@link MAX_TRACKED_REQUESTS} requests were in flight at once, or more than
   * {@link MAX_TRACKED_STATEMENTS} prepared statements held session operations: from then on the state may
   * be incomplete (treat the session as pinned, or close its server when it leaves).
   */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  // ---- the client's requests, as they go to the server -----------------------------------------

  /** A simple Query (`Q`). */
  query(sql: string): void {
    const statements = sessionCommands(sql, this.#lexing());
    const plain = statements.every((ops) => ops.length === 0);
    this.#push(plain ? PLAIN_QUERY : { kind: UNIT.QUERY, statements, next: 0 });
  }

  /** Parse (`P`) of `sql` as prepared statement `name` ("" for the unnamed one). */
  parse(name: string, sql: string): void {
    const ops = sessionCommands(sql, this.#lexing()).flat();
    if (ops.length > 0) {
      if (this.#statements.size >= MAX_TRACKED_STATEMENTS && !this.#statements.has(name)) {
        this.#overflowed = true;
        return;
      }
      this.#statements.set(name, ops);
    } else this.#statements.delete(name);
  }

  /** Bind (`B`) of prepared statement `statement` to portal `portal` ("" for the unnamed ones). */
  bind(portal: string, statement: string): void {
    const ops = this.#statements.get(statement);
    if (ops !== undefined) this.#portals.set(portal, ops);
    else this.#portals.delete(portal);
  }

  /** Execute (`E`) of `portal`. */
  execute(portal: string): void {
    const ops = this.#portals.get(portal);
    if (ops === undefined) return this.#push(PLAIN_EXECUTE);
    this.#portals.delete(portal); // its operations count once, however many Executes run it
    this.#push({ kind: UNIT.EXECUTE, statements: [ops], next: 0 });
  }

  /** Sync (`S`). */
  sync(): void {
    this.#push(SYNC_UNIT);
  }

  /** Close (`C`) of a statement (`S`) or portal (`P`). */
  close(kind: "S" | "P", name: string): void {
    if (kind === "S") this.#statements.delete(name);
    else this.#portals.delete(name);
  }

  /** FunctionCall (`F`): answered by FunctionCallResponse and ReadyForQuery; pgrelay reads no effect. */
  functionCall(): void {
    this.#push(CALL_UNIT);
  }

  // ---- the server's replies, as they come back -------------------------------------------------

  /** ParameterStatus (`S`): a reported setting's value now. */
  parameterStatus(name: string, value: string): void {
    const key = lowerAscii(name);
    this.#reported.set(key, value);
    if (IDENTITY_SETTINGS.includes(key)) {
      if (!this.#identity.has(key)) this.#identity.set(key, value);
      this.#roleDrift = IDENTITY_SETTINGS.some((name) =>
        this.#reported.get(name) !== this.#identity.get(name)
      );
      this.#refreshPins();
    }
  }

  /** CommandComplete (`C`) with its tag ("SET", "COMMIT", "ROLLBACK", "SELECT 1"...). */
  commandComplete(tag: string): void {
    const unit = this.#peek();
    if (unit === undefined) return;
    if (unit.kind === UNIT.QUERY) {
      if (unit.next < unit.statements.length) this.#applyStatement(unit.statements[unit.next++]!, tag);
    } else if (unit.kind === UNIT.EXECUTE) {
      this.#head++;
      if (unit.statements.length > 0) this.#applyStatement(unit.statements[0]!, tag);
    }
  }

  /** EmptyQueryResponse (`I`). */
  emptyQuery(): void {
    if (this.#peek()?.kind === UNIT.EXECUTE) this.#head++;
  }

  /** PortalSuspended (`s`): the portal ran part way; its effects count. */
  portalSuspended(): void {
    this.commandComplete("");
  }

  /** ErrorResponse (`E`), not FATAL: the statement failed; what follows it up to the next Sync is skipped. */
  error(): void {
    const unit = this.#peek();
    if (unit?.kind === UNIT.QUERY) {
      if (unit.next < unit.statements.length) unit.next = unit.statements.length;
    } else if (unit?.kind === UNIT.EXECUTE) {
      while (this.#peek()?.kind === UNIT.EXECUTE) this.#head++;
    }
    // An error outside a transaction block rolls back the implicit transaction; inside, the block fails
    // and keeps its savepoints for ROLLBACK TO.
    if (!this.#inBlock) this.#layers = [];
  }

  /** ReadyForQuery (`Z`) with its status byte (`I`, `T` or `E`). */
  ready(status: number): void {
    for (let unit = this.#peek(); unit !== undefined; unit = this.#peek()) {
      this.#head++;
      if (unit.kind !== UNIT.EXECUTE) break;
    }
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
    if (status === TRANSACTION_STATUS.IDLE) {
      this.#commit();
      this.#inBlock = false;
    } else if (status === TRANSACTION_STATUS.IN_TRANSACTION || status === TRANSACTION_STATUS.FAILED) {
      this.#inBlock = true;
    }
  }

  // ---- replay ----------------------------------------------------------------------------------

  /**
   * The SQL that makes a server whose state is `server` match this session: `SET name = 'value'` for each
   * replayable setting that differs, `RESET name` for each unreported one the server has and this session
   * has not, joined by "; " into one simple Query; "" when nothing differs. (A list setting whose text SET
   * cannot store, such as `set_config('search_path', '', false)`, is replayed with that same call.) Reported settings are set
   * only when the server reports them too and a client may set them (guc_settings.ts).
   * Send it in the server connection's client_encoding (pgrelay's is UTF8).
   */
  replayFor(server: SettingsView): string {
    const statements: string[] = [];
    for (const [name, value] of [...this.#reported].sort(byName)) {
      if (!replaysReported(name)) continue;
      const theirs = server.reported.get(name);
      if (theirs !== undefined && theirs !== value) statements.push(setStatement(name, value));
    }
    const mine = this.settings;
    for (const [name, value] of [...mine].sort(byName)) {
      if (server.reported.has(name) || this.#reported.has(name)) continue;
      if (server.settings.get(name) !== value) statements.push(setStatement(name, value));
    }
    for (const name of [...server.settings.keys()].sort()) {
      if (!mine.has(name) && !server.reported.has(name) && !this.#reported.has(name)) {
        statements.push(`RESET ${quoteSettingName(name)}`);
      }
    }
    return statements.join("; ");
  }

  // ---- internals -------------------------------------------------------------------------------

  #lexing() {
    return { standardConformingStrings: this.#reported.get("standard_conforming_strings") !== "off" };
  }

  #push(unit: Unit): void {
    if (this.#queue.length - this.#head >= MAX_TRACKED_REQUESTS) {
      this.#overflowed = true;
      return;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.#queue.push(unit);
  }

  #peek(): Unit | undefined {
    return this.#queue[this.#head];
  }

  #applyStatement(ops: readonly SessionOp[], tag: string): void {
    for (const op of ops) this.#applyOp(op, tag);
    this.#refreshPins();
  }

  #applyOp(op: SessionOp, tag: string): void {
    switch (op.op) {
      case "begin":
        this.#inBlock = true;
        return;
      case "commit":
        // COMMIT of a failed transaction rolls it back and says so in its tag
        if (tag.startsWith("ROLLBACK")) this.#layers = [];
        else this.#commit();
        this.#inBlock = op.chain;
        return;
      case "rollback":
        this.#layers = [];
        this.#inBlock = op.chain;
        return;
      case "prepare_transaction":
        this.#commit(); // the server keeps a prepared transaction's SETs (AtEOXact_GUC(true))
        this.#inBlock = false;
        return;
      case "savepoint":
        this.#top();
        this.#layers.push({ name: op.name, ops: [] });
        return;
      case "release": {
        const at = this.#savepoint(op.name);
        if (at <= 0) return;
        const below = this.#layers[at - 1]!;
        for (const layer of this.#layers.slice(at)) below.ops.push(...layer.ops);
        this.#layers.length = at;
        return;
      }
      case "rollback_to": {
        const at = this.#savepoint(op.name);
        if (at <= 0) return;
        this.#layers[at]!.ops = [];
        this.#layers.length = at + 1;
        return;
      }
    }
    if (IMMEDIATE_OPS.has(op.op)) this.#committed.apply(op, this.#baseline, this.#isReported);
    else this.#top().ops.push(op);
  }

  /** The innermost open layer, opening the transaction's own when there is none. */
  #top(): Layer {
    let top = this.#layers.at(-1);
    if (top === undefined) {
      top = { name: null, ops: [] };
      this.#layers.push(top);
    }
    return top;
  }

  /** The index of the innermost savepoint named `name`, or -1. */
  #savepoint(name: string): number {
    for (let i = this.#layers.length - 1; i > 0; i--) {
      if (this.#layers[i]!.name === name) return i;
    }
    return -1;
  }

  #commit(): void {
    if (this.#layers.length === 0) return;
    for (const layer of this.#layers) {
      for (const op of layer.ops) this.#committed.apply(op, this.#baseline, this.#isReported);
    }
    this.#layers = [];
    this.#refreshPins();
  }

  #refreshPins(): void {
    for (const reason of PIN_REASON_NAMES) {
      const holds = this.#committed.holds(reason) || (reason === "set_role" && this.#roleDrift);
      if (holds === this.#held.has(reason)) continue;
      if (holds) this.#held.set(reason, this.#pinSequence++);
      else this.#held.delete(reason);
      this.#onPinChange?.(reason, holds);
    }
  }
}

const byName = (a: readonly [string, string], b: readonly [string, string]) =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;

/**
 * `SET name = 'e1', 'e2'`: list-quote settings element by element, others as one literal. A list value
 * that SET would not store the same way (an empty string, or list text not as SET writes it, from
 * set_config or the startup packet) is stored exactly with `SELECT pg_catalog.set_config(name, value, false)`.
 */
function setStatement(name: string, value: string): string {
  const elements = settingElements(name, value);
  if (elements.length === 0 || flattenSetting(name, elements) !== value) {
    return `SELECT pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`;
  }
  return `SET ${quoteSettingName(name)} = ${elements.map(quoteLiteral).join(", ")}`;
}
