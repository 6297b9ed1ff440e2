/**
 * What a statement does to session state, read from its text: settings (SET, RESET, set_config),
 * transaction control, and the state that pins a client to its server (pin_reasons.ts).
 * A statement that does none of these has no operations. The text is never executed or rewritten.
 * https://www.postgresql.org/docs/current/sql-set.html
 */
import { SQL_TOKEN, SqlLexer } from "../audit/sql_lexer.ts";
import { flattenSetting } from "./guc_settings.ts";
import type { PinReason } from "./pin_reasons.ts";
import { type SplitOptions, splitStatements, type SqlStatement, type SqlWord } from "./sql_statements.ts";

/** One effect of a statement on the session. Names (settings, channels, cursors...) are case-folded. */
export type SessionOp =
  // settings: take effect when the transaction commits
  | { readonly op: "set"; readonly name: string; readonly value: string }
  | { readonly op: "reset"; readonly name: string }
  | { readonly op: "reset_all" }
  // transactional state that pins
  | { readonly op: "listen"; readonly channel: string }
  | { readonly op: "unlisten"; readonly channel: string | null } // null: UNLISTEN *
  | { readonly op: "temp"; readonly name: string }
  | { readonly op: "drop"; readonly names: readonly string[] }
  | { readonly op: "discard_temp" }
  | { readonly op: "hold_cursor"; readonly name: string }
  | { readonly op: "close"; readonly name: string | null } // null: CLOSE ALL
  | { readonly op: "role"; readonly set: boolean }
  | { readonly op: "session_authorization"; readonly set: boolean }
  // state that does not follow the transaction: takes effect at once
  | { readonly op: "prepare"; readonly name: string }
  | { readonly op: "deallocate"; readonly name: string | null } // null: DEALLOCATE ALL
  | { readonly op: "lock"; readonly key: string | null } // null: a key pgrelay cannot read
  | { readonly op: "unlock"; readonly key: string }
  | { readonly op: "unlock_all" }
  | { readonly op: "load" }
  // transaction control
  | { readonly op: "begin" }
  | { readonly op: "commit"; readonly chain: boolean }
  | { readonly op: "rollback"; readonly chain: boolean }
  | { readonly op: "savepoint"; readonly name: string }
  | { readonly op: "release"; readonly name: string }
  | { readonly op: "rollback_to"; readonly name: string }
  | { readonly op: "prepare_transaction" };

export type SessionOpKind = SessionOp["op"];

/** Operations that apply when they complete, whatever the transaction does later. */
export const IMMEDIATE_OPS: ReadonlySet<SessionOpKind> = new Set<SessionOpKind>([
  "prepare",
  "deallocate",
  "lock",
  "unlock",
  "unlock_all",
  "load",
]);

/** Operations that control the transaction. */
export const TRANSACTION_OPS: ReadonlySet<SessionOpKind> = new Set<SessionOpKind>([
  "begin",
  "commit",
  "rollback",
  "savepoint",
  "release",
  "rollback_to",
  "prepare_transaction",
]);

const NONE: readonly SessionOp[] = Object.freeze([]);

/** First words of the statements {@link statementOps} reads beyond function calls. */
const FIRST_WORDS = new Set([
  "set",
  "reset",
  "begin",
  "start",
  "commit",
  "end",
  "abort",
  "rollback",
  "savepoint",
  "release",
  "prepare",
  "deallocate",
  "discard",
  "listen",
  "unlisten",
  "declare",
  "close",
  "load",
  "create",
  "drop",
]);
/** Text that may hold a function call or SELECT INTO that matters, wherever it is. */
const ANYWHERE = /advisory|set_config|into/i;

/** The operations of each statement of `sql` (a simple Query's text or a Parse's), in order. */
export function sessionCommands(sql: string, options: SplitOptions = {}): (readonly SessionOp[])[] {
  if (isPlainSingleStatement(sql, options)) return [NONE];
  return splitStatements(sql, options).map(statementOps);
}

/**
 * The fast path for most queries: one statement (no semicolon but a trailing one), nothing of
 * {@link ANYWHERE} in it, and a first word not in {@link FIRST_WORDS}: no operations, no words built.
 */
function isPlainSingleStatement(sql: string, options: SplitOptions): boolean {
  const semicolon = sql.indexOf(";");
  if (semicolon >= 0 && sql.slice(semicolon).replace(/[;\s]+/g, "") !== "") return false;
  if (ANYWHERE.test(sql)) return false;
  const lexer = new SqlLexer(sql, { standardConformingStrings: options.standardConformingStrings ?? true });
  for (let type = lexer.next(); type !== undefined; type = lexer.next()) {
    if (type === SQL_TOKEN.LINE_COMMENT || type === SQL_TOKEN.BLOCK_COMMENT) continue;
    if (type === SQL_TOKEN.OTHER && /\s/.test(sql[lexer.start]!)) continue;
    return type !== SQL_TOKEN.IDENTIFIER || !FIRST_WORDS.has(sql.slice(lexer.start, lexer.end).toLowerCase());
  }
  return true;
}

/** The reason the first statement of `sql` that would pin its client has, or null (for `on_pin: error`). */
export function pinReasonOf(sql: string, options: SplitOptions = {}): PinReason | null {
  for (const ops of sessionCommands(sql, options)) {
    for (const op of ops) {
      const reason = acquiredReason(op);
      if (reason !== null) return reason;
    }
  }
  return null;
}

/** The pin reason an operation acquires, or null. */
export function acquiredReason(op: SessionOp): PinReason | null {
  switch (op.op) {
    case "listen":
      return "listen";
    case "temp":
      return "temp_table";
    case "hold_cursor":
      return "with_hold_cursor";
    case "prepare":
      return "sql_prepare";
    case "lock":
      return "advisory_lock";
    case "load":
      return "load";
    case "role":
    case "session_authorization":
      return op.set ? "set_role" : null;
    default:
      return null;
  }
}

const isWord = (word: SqlWord | undefined, text: string) =>
  word !== undefined && word.type === SQL_TOKEN.IDENTIFIER && word.text === text;
const isOther = (word: SqlWord | undefined, text: string) =>
  word !== undefined && word.type === SQL_TOKEN.OTHER && word.text === text;
/** An identifier, quoted or not (a ColId). */
const isName = (word: SqlWord | undefined): word is SqlWord =>
  word !== undefined && (word.type === SQL_TOKEN.IDENTIFIER || word.type === SQL_TOKEN.QUOTED_IDENTIFIER);

/** The operations of one statement. */
export function statementOps(words: SqlStatement): readonly SessionOp[] {
  const first = words[0];
  if (first === undefined || first.type !== SQL_TOKEN.IDENTIFIER) return NONE;
  switch (first.text) {
    case "set":
      return setOps(words, 1);
    case "reset":
      return resetOps(words);
    case "begin":
      return [{ op: "begin" }];
    case "start":
      return isWord(words[1], "transaction") ? [{ op: "begin" }] : NONE;
    case "commit":
    case "end":
      if (isWord(words[1], "prepared")) return NONE;
      return [{ op: "commit", chain: chained(words) }];
    case "abort":
      return [{ op: "rollback", chain: chained(words) }];
    case "rollback":
      return rollbackOps(words);
    case "savepoint":
      return isName(words[1]) ? [{ op: "savepoint", name: words[1].text }] : NONE;
    case "release": {
      const name = isWord(words[1], "savepoint") ? words[2] : words[1];
      return isName(name) ? [{ op: "release", name: name.text }] : NONE;
    }
    case "prepare":
      if (isWord(words[1], "transaction")) return [{ op: "prepare_transaction" }];
      return isName(words[1]) ? [{ op: "prepare", name: words[1].text }] : NONE;
    case "deallocate": {
      const name = isWord(words[1], "prepare") ? words[2] : words[1];
      if (isWord(name, "all")) return [{ op: "deallocate", name: null }];
      return isName(name) ? [{ op: "deallocate", name: name.text }] : NONE;
    }
    case "discard":
      return discardOps(words[1]);
    case "listen":
      return isName(words[1]) ? [{ op: "listen", channel: words[1].text }] : NONE;
    case "unlisten":
      if (isOther(words[1], "*")) return [{ op: "unlisten", channel: null }];
      return isName(words[1]) ? [{ op: "unlisten", channel: words[1].text }] : NONE;
    case "declare":
      return declareOps(words);
    case "close":
      if (isWord(words[1], "all")) return [{ op: "close", name: null }];
      return isName(words[1]) ? [{ op: "close", name: words[1].text }] : NONE;
    case "load":
      return [{ op: "load" }];
    case "create":
      return createOps(words);
    case "drop":
      return dropOps(words);
    default:
      return functionOps(words);
  }
}

/** `... AND CHAIN` (not `AND NO CHAIN`). */
function chained(words: SqlStatement): boolean {
  const n = words.length;
  return n >= 2 && isWord(words[n - 1], "chain") && isWord(words[n - 2], "and");
}

function rollbackOps(words: SqlStatement): readonly SessionOp[] {
  let i = 1;
  if (isWord(words[i], "work") || isWord(words[i], "transaction")) i++;
  if (isWord(words[i], "prepared")) return NONE;
  if (isWord(words[i], "to")) {
    i++;
    if (isWord(words[i], "savepoint")) i++;
    const name = words[i];
    return isName(name) ? [{ op: "rollback_to", name: name.text }] : NONE;
  }
  return [{ op: "rollback", chain: chained(words) }];
}

function discardOps(what: SqlWord | undefined): readonly SessionOp[] {
  if (isWord(what, "temp") || isWord(what, "temporary")) return [{ op: "discard_temp" }];
  if (!isWord(what, "all")) return NONE; // DISCARD PLANS / SEQUENCES: nothing pgrelay tracks
  // DISCARD ALL = CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; UNLISTEN *;
  // SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES
  return [
    { op: "close", name: null },
    { op: "session_authorization", set: false },
    { op: "role", set: false },
    { op: "reset_all" },
    { op: "deallocate", name: null },
    { op: "unlisten", channel: null },
    { op: "unlock_all" },
    { op: "discard_temp" },
  ];
}

/** The words of a dotted name from `i`: `a`, `a.b`; undefined when none. */
function dottedName(words: SqlStatement, i: number): { parts: string[]; next: number } | undefined {
  const first = words[i];
  if (!isName(first)) return undefined;
  const parts = [first.text];
  let at = i + 1;
  while (isOther(words[at], ".") && isName(words[at + 1])) {
    parts.push(words[at + 1]!.text);
    at += 2;
  }
  return { parts, next: at };
}

/** `SET [SESSION | LOCAL] ...` from `i` (after SET). */
function setOps(words: SqlStatement, i: number): readonly SessionOp[] {
  const scope = words[i];
  if (isWord(scope, "local")) return NONE; // ends with the transaction
  if (isWord(scope, "session")) {
    const next = words[i + 1];
    if (isWord(next, "authorization")) {
      const value = words[i + 2];
      const reset = isWord(value, "default");
      return [{ op: "session_authorization", set: !reset }];
    }
    if (isWord(next, "characteristics")) return sessionCharacteristics(words, i + 2);
    i++;
  }
  const head = words[i];
  if (isWord(head, "transaction")) return NONE; // SET TRANSACTION ...: this transaction only
  if (isWord(head, "time") && isWord(words[i + 1], "zone")) return timeZone(words, i + 2);
  if (isWord(head, "names")) return [{ op: "set", name: "client_encoding", value: words[i + 1]?.text ?? "" }];
  if (isWord(head, "schema") && words[i + 1]?.type === SQL_TOKEN.STRING) {
    return [{ op: "set", name: "search_path", value: flattenSetting("search_path", [words[i + 1]!.text]) }];
  }
  if (isWord(head, "xml") && isWord(words[i + 1], "option") && isName(words[i + 2])) {
    return [{ op: "set", name: "xmloption", value: words[i + 2]!.text }];
  }
  if (isWord(head, "role")) {
    const value = words[i + 1];
    return [{ op: "role", set: !(isWord(value, "none") || isWord(value, "default")) }];
  }
  const name = dottedName(words, i);
  if (name === undefined) return NONE;
  const setting = name.parts.join(".");
  const assign = words[name.next];
  if (isWord(assign, "from")) return NONE; // SET name FROM CURRENT: keeps the current value
  if (!isWord(assign, "to") && !isOther(assign, "=")) return NONE;
  const rest = words.slice(name.next + 1);
  if (rest.length === 1 && isWord(rest[0], "default")) return settingOp(setting, null);
  const elements = valueList(rest);
  if (elements === undefined) return NONE;
  return settingOp(setting, flattenSetting(setting, elements));
}

/** A SET or RESET of `name` (null value: back to the session default). */
function settingOp(name: string, value: string | null): readonly SessionOp[] {
  if (name === "role") {
    return [{ op: "role", set: value !== null && value !== "none" }];
  }
  if (name === "session_authorization") return [{ op: "session_authorization", set: value !== null }];
  return value === null ? [{ op: "reset", name }] : [{ op: "set", name, value }];
}

/**
 * `e1, e2, ...` where each is a string, a (signed) number, or a bare or quoted word, as SET's var_list
 * takes them; undefined when it is anything else.
 */
function valueList(words: SqlStatement): string[] | undefined {
  const elements: string[] = [];
  let i = 0;
  for (;;) {
    let sign = "";
    if (isOther(words[i], "-") || isOther(words[i], "+")) {
      sign = words[i]!.text === "-" ? "-" : "";
      i++;
    }
    const word = words[i];
    if (word === undefined) return undefined;
    if (word.type === SQL_TOKEN.NUMBER) elements.push(sign + normalizeNumber(word.text));
    else if (sign !== "") return undefined;
    else if (word.type === SQL_TOKEN.STRING || isName(word)) elements.push(word.text);
    else return undefined;
    i++;
    if (i === words.length) return elements;
    if (!isOther(words[i], ",")) return undefined;
    i++;
  }
}

/** Integers as the server prints them (underscores, leading zeros and 0x/0o/0b gone); others as written. */
function normalizeNumber(text: string): string {
  const plain = text.replaceAll("_", "");
  if (/^(\d+|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+)$/.test(plain)) return BigInt(plain).toString();
  return plain;
}

/** SET TIME ZONE value | LOCAL | DEFAULT (TimeZone is a reported setting: the value only matters unreported). */
function timeZone(words: SqlStatement, i: number): readonly SessionOp[] {
  const value = words[i];
  if (isWord(value, "local") || isWord(value, "default")) return [{ op: "reset", name: "timezone" }];
  if (value === undefined || isWord(value, "interval")) return NONE;
  const elements = valueList(words.slice(i));
  return elements?.length === 1 ? [{ op: "set", name: "timezone", value: elements[0]! }] : NONE;
}

/** SET SESSION CHARACTERISTICS AS TRANSACTION modes: the default_transaction_* settings. */
function sessionCharacteristics(words: SqlStatement, i: number): readonly SessionOp[] {
  if (!isWord(words[i], "as") || !isWord(words[i + 1], "transaction")) return NONE;
  const ops: SessionOp[] = [];
  for (let at = i + 2; at < words.length; at++) {
    const word = words[at]!;
    if (isWord(word, "isolation") && isWord(words[at + 1], "level")) {
      const a = words[at + 2]?.text ?? "";
      const two = a === "read" || a === "repeatable"; // read committed, read uncommitted, repeatable read
      const level = two ? `${a} ${words[at + 3]?.text ?? ""}` : a;
      ops.push({ op: "set", name: "default_transaction_isolation", value: level });
    } else if (isWord(word, "read") && isWord(words[at + 1], "only")) {
      ops.push({ op: "set", name: "default_transaction_read_only", value: "on" });
    } else if (isWord(word, "read") && isWord(words[at + 1], "write")) {
      ops.push({ op: "set", name: "default_transaction_read_only", value: "off" });
    } else if (isWord(word, "not") && isWord(words[at + 1], "deferrable")) {
      ops.push({ op: "set", name: "default_transaction_deferrable", value: "off" });
      at++;
    } else if (isWord(word, "deferrable")) {
      ops.push({ op: "set", name: "default_transaction_deferrable", value: "on" });
    }
  }
  return ops;
}

function resetOps(words: SqlStatement): readonly SessionOp[] {
  const what = words[1];
  if (isWord(what, "all")) return [{ op: "reset_all" }];
  if (isWord(what, "time") && isWord(words[2], "zone")) return [{ op: "reset", name: "timezone" }];
  if (isWord(what, "session") && isWord(words[2], "authorization")) {
    return [{ op: "session_authorization", set: false }];
  }
  if (isWord(what, "transaction")) return NONE;
  const name = dottedName(words, 1);
  return name === undefined ? NONE : settingOp(name.parts.join("."), null);
}

/** DECLARE name [options] CURSOR [WITH HOLD | WITHOUT HOLD] FOR ... */
function declareOps(words: SqlStatement): readonly SessionOp[] {
  const name = words[1];
  if (!isName(name)) return NONE;
  for (let i = 2; i < words.length; i++) {
    if (isWord(words[i], "cursor")) {
      return isWord(words[i + 1], "with") && isWord(words[i + 2], "hold")
        ? [{ op: "hold_cursor", name: name.text }]
        : NONE;
    }
  }
  return NONE;
}

const TEMP_OBJECTS = new Set(["table", "sequence", "view"]);
const NAME_ENDS = new Set(["on", "as", "to", "for", "from"]);
const isTempSchema = (word: string) => word === "pg_temp" || /^pg_temp_\d+$/.test(word);

/**
 * CREATE [OR REPLACE] [GLOBAL | LOCAL] TEMP | TEMPORARY [UNLOGGED] [RECURSIVE] TABLE | SEQUENCE | VIEW
 * [IF NOT EXISTS] name, unless ON COMMIT DROP; and CREATE of anything named pg_temp.name.
 */
function createOps(words: SqlStatement): readonly SessionOp[] {
  let i = 1;
  if (isWord(words[i], "or") && isWord(words[i + 1], "replace")) i += 2;
  if (isWord(words[i], "global") || isWord(words[i], "local")) i++;
  const temp = isWord(words[i], "temp") || isWord(words[i], "temporary");
  if (temp) {
    i++;
    if (isWord(words[i], "unlogged") || isWord(words[i], "recursive")) i++;
    if (!isName(words[i]) || !TEMP_OBJECTS.has(words[i]!.text)) return NONE;
    i++;
    if (isWord(words[i], "if") && isWord(words[i + 1], "not") && isWord(words[i + 2], "exists")) i += 3;
    const name = dottedName(words, i);
    if (name === undefined || onCommitDrop(words)) return NONE;
    return [{ op: "temp", name: name.parts[name.parts.length - 1]! }];
  }
  // An object created in the temporary schema by name: its own name comes before any parenthesis and
  // before ON, AS, TO, FOR or FROM (after those, pg_temp.x is a reference: CREATE INDEX ON pg_temp.t)
  for (let at = i; at + 2 < words.length; at++) {
    const word = words[at]!;
    if (isOther(word, "(") || (word.type === SQL_TOKEN.IDENTIFIER && NAME_ENDS.has(word.text))) break;
    if (isName(word) && isTempSchema(word.text) && isOther(words[at + 1], ".") && isName(words[at + 2])) {
      if (onCommitDrop(words)) return NONE;
      return [{ op: "temp", name: words[at + 2]!.text }];
    }
  }
  return NONE;
}

function onCommitDrop(words: SqlStatement): boolean {
  for (let i = 0; i + 2 < words.length; i++) {
    if (isWord(words[i], "on") && isWord(words[i + 1], "commit") && isWord(words[i + 2], "drop")) return true;
  }
  return false;
}

/** DROP TABLE | SEQUENCE | VIEW [IF EXISTS] name [, ...]: names unqualified or in pg_temp. */
function dropOps(words: SqlStatement): readonly SessionOp[] {
  if (!isName(words[1]) || !TEMP_OBJECTS.has(words[1].text)) return NONE;
  let i = 2;
  if (isWord(words[i], "if") && isWord(words[i + 1], "exists")) i += 2;
  const names: string[] = [];
  for (;;) {
    const name = dottedName(words, i);
    if (name === undefined) break;
    const { parts } = name;
    if (parts.length === 1 || (parts.length === 2 && isTempSchema(parts[0]!))) names.push(parts.at(-1)!);
    i = name.next;
    if (!isOther(words[i], ",")) break;
    i++;
  }
  return names.length > 0 ? [{ op: "drop", names }] : NONE;
}

const LOCK_FUNCTIONS = {
  pg_advisory_lock: "x",
  pg_try_advisory_lock: "x",
  pg_advisory_lock_shared: "s",
  pg_try_advisory_lock_shared: "s",
} as const;
const UNLOCK_FUNCTIONS = { pg_advisory_unlock: "x", pg_advisory_unlock_shared: "s" } as const;

/**
 * Function calls in any other statement: session advisory locks (pg_advisory_lock and friends; not the
 * _xact_ ones), SELECT INTO TEMP, and `SELECT set_config(name, value, false)` with constant arguments.
 * A statement with FROM may call a function once per row: its locks count as keys pgrelay cannot read,
 * and its unlocks count for nothing.
 */
function functionOps(words: SqlStatement): readonly SessionOp[] {
  let ops: SessionOp[] | undefined;
  const push = (op: SessionOp) => (ops ??= []).push(op);
  const rows = words.some((w) => isWord(w, "from"));
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (!isName(word) || !isOther(words[i + 1], "(")) {
      if (isWord(word, "into") && isWord(words[0], "select")) selectIntoTemp(words, i + 1, push);
      continue;
    }
    const name = word.text;
    if (name === "pg_advisory_unlock_all") push({ op: "unlock_all" });
    else if (Object.hasOwn(LOCK_FUNCTIONS, name)) {
      const mode = LOCK_FUNCTIONS[name as keyof typeof LOCK_FUNCTIONS];
      const key = rows ? null : lockKey(words, i + 2);
      push({ op: "lock", key: key === null ? null : `${mode}:${key}` });
    } else if (Object.hasOwn(UNLOCK_FUNCTIONS, name)) {
      const mode = UNLOCK_FUNCTIONS[name as keyof typeof UNLOCK_FUNCTIONS];
      const key = lockKey(words, i + 2);
      if (!rows && key !== null) push({ op: "unlock", key: `${mode}:${key}` });
    } else if (name === "set_config" && isWord(words[0], "select") && !rows) {
      const op = setConfig(words, i + 2);
      if (op !== undefined) { for (const o of op) push(o); }
    }
  }
  return ops ?? NONE;
}

/** The key of an advisory lock call whose arguments (from `i`) are integer constants: "1" or "1,2". */
function lockKey(words: SqlStatement, i: number): string | null {
  const parts: string[] = [];
  for (;;) {
    let sign = "";
    if (isOther(words[i], "-")) {
      sign = "-";
      i++;
    }
    const word = words[i];
    if (word === undefined) return null;
    let text: string;
    if (word.type === SQL_TOKEN.NUMBER) text = normalizeNumber(word.text);
    else if (word.type === SQL_TOKEN.STRING && /^\s*[-+]?\d+\s*$/.test(word.text)) {
      text = BigInt(word.text.trim()).toString();
    } else return null;
    if (!/^-?\d+$/.test(text)) return null;
    parts.push(sign === "-" && text !== "0" ? `-${text.replace(/^-/, "")}` : text);
    i++;
    if (isOther(words[i], ")")) return parts.join(",");
    if (!isOther(words[i], ",")) return null;
    i++;
  }
}

/** SELECT ... INTO [GLOBAL | LOCAL] TEMP | TEMPORARY [UNLOGGED] [TABLE] name. */
function selectIntoTemp(words: SqlStatement, i: number, push: (op: SessionOp) => void): void {
  if (isWord(words[i], "global") || isWord(words[i], "local")) i++;
  if (!isWord(words[i], "temp") && !isWord(words[i], "temporary")) return;
  i++;
  if (isWord(words[i], "unlogged")) i++;
  if (isWord(words[i], "table")) i++;
  const name = dottedName(words, i);
  if (name !== undefined) push({ op: "temp", name: name.parts.at(-1)! });
}

/** set_config('name', 'value', false) with constant arguments (from `i`, after the parenthesis). */
function setConfig(words: SqlStatement, i: number): readonly SessionOp[] | undefined {
  const [name, c1, value, c2, local, close] = words.slice(i, i + 6);
  if (name?.type !== SQL_TOKEN.STRING || value?.type !== SQL_TOKEN.STRING) return undefined;
  if (!isOther(c1, ",") || !isOther(c2, ",") || !isOther(close, ")") || local === undefined) return undefined;
  const isLocal = local.type === SQL_TOKEN.STRING || local.type === SQL_TOKEN.IDENTIFIER
    ? ["true", "t", "on", "yes", "1"].includes(local.text.toLowerCase())
      ? true
      : ["false", "f", "off", "no", "0"].includes(local.text.toLowerCase())
      ? false
      : undefined
    : undefined;
  if (isLocal !== false) return undefined;
  const setting = name.text.toLowerCase();
  return settingOp(setting, value.text); // stored as given: set_config does not re-quote list elements
}
