/**
 * Splits SQL text into statements of significant words, with {@link SqlLexer} so that semicolons and
 * keywords inside strings, dollar quotes, quoted identifiers and comments never count.
 * Identifiers come out case-folded (ASCII, as the server does), quoted identifiers unquoted and string
 * constants decoded, so the classifier in session_commands.ts compares plain text.
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 */
import { SQL_TOKEN, SqlLexer, type SqlToken } from "../audit/sql_lexer.ts";

/** One significant token of a statement. */
export interface SqlWord {
  readonly type: SqlToken;
  /**
   * IDENTIFIER: lower-cased; QUOTED_IDENTIFIER: without its quotes, `""` undoubled; STRING: the decoded
   * value (bit strings as written); NUMBER and PARAMETER: as written; OTHER: the character.
   */
  readonly text: string;
}

/** A statement: its words, without white space and comments; never empty. */
export type SqlStatement = readonly SqlWord[];

export interface SplitOptions {
  /** The session's standard_conforming_strings (default true). */
  standardConformingStrings?: boolean;
}

const SEMICOLON = 0x3b;
const OPEN = [0x28, 0x5b] as const; // ( [
const CLOSE = [0x29, 0x5d] as const; // ) ]

const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/**
 * The statements of `sql`, as the server splits a simple Query: at semicolons outside parentheses and
 * outside a `BEGIN ATOMIC ... END` function body (counted the way psql does: in CREATE [OR REPLACE]
 * FUNCTION | PROCEDURE, outside parentheses, BEGIN and CASE open and END closes). Empty statements are dropped, as the server drops them.
 */
export function splitStatements(sql: string, options: SplitOptions = {}): SqlStatement[] {
  const scs = options.standardConformingStrings ?? true;
  const lexer = new SqlLexer(sql, { standardConformingStrings: scs });
  const statements: SqlStatement[] = [];
  let words: SqlWord[] = [];
  let parens = 0;
  let atomic = 0;
  for (let type = lexer.next(); type !== undefined; type = lexer.next()) {
    if (type === SQL_TOKEN.LINE_COMMENT || type === SQL_TOKEN.BLOCK_COMMENT) continue;
    if (type === SQL_TOKEN.OTHER) {
      const c = sql.charCodeAt(lexer.start);
      if (isSpace(c)) continue;
      if (c === SEMICOLON && parens === 0 && atomic === 0) {
        if (words.length > 0) statements.push(words);
        words = [];
        continue;
      }
      if (c === OPEN[0] || c === OPEN[1]) parens++;
      else if ((c === CLOSE[0] || c === CLOSE[1]) && parens > 0) parens--;
    }
    const word = { type, text: wordText(sql, lexer.start, lexer.end, type, scs) };
    if (type === SQL_TOKEN.IDENTIFIER && parens === 0 && isRoutineDefinition(words)) {
      if (word.text === "begin" || (word.text === "case" && atomic > 0)) atomic++;
      else if (word.text === "end" && atomic > 0) atomic--;
    }
    words.push(word);
  }
  if (words.length > 0) statements.push(words);
  return statements;
}

/** The statement so far starts CREATE [OR REPLACE] FUNCTION | PROCEDURE. */
function isRoutineDefinition(words: readonly SqlWord[]): boolean {
  if (words[0]?.text !== "create" || words[0].type !== SQL_TOKEN.IDENTIFIER) return false;
  const kind = words[1]?.text === "or" && words[2]?.text === "replace" ? words[3] : words[1];
  return kind !== undefined && kind.type === SQL_TOKEN.IDENTIFIER &&
    (kind.text === "function" || kind.text === "procedure");
}

function wordText(sql: string, start: number, end: number, type: SqlToken, scs: boolean): string {
  switch (type) {
    case SQL_TOKEN.IDENTIFIER:
      return lowerAscii(sql.slice(start, end));
    case SQL_TOKEN.QUOTED_IDENTIFIER: {
      const raw = sql.slice(start, end);
      const open = raw.indexOf('"');
      const close = raw.length > open + 1 && raw.endsWith('"') ? raw.length - 1 : raw.length;
      return raw.slice(open + 1, close).replaceAll('""', '"');
    }
    case SQL_TOKEN.STRING:
      return decodeString(sql.slice(start, end), scs);
    default:
      return sql.slice(start, end);
  }
}

/** ASCII-only case folding: identifiers and setting names compare this way on the server. */
export function lowerAscii(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]/g, (c) => c.toLowerCase()) : text;
}

/** The value of a string constant token (quotes, prefixes, escapes and continuations removed). */
export function decodeString(raw: string, standardConformingStrings = true): string {
  const first = raw.charCodeAt(0);
  if (first === 0x24) { // $tag$body$tag$
    const tagEnd = raw.indexOf("$", 1);
    const tag = raw.slice(0, tagEnd + 1);
    return raw.endsWith(tag) && raw.length >= 2 * tag.length
      ? raw.slice(tag.length, raw.length - tag.length)
      : raw.slice(tag.length);
  }
  const prefix = first | 0x20;
  if (first === 0x27) return quoted(raw, 1, standardConformingStrings ? "standard" : "escape");
  if (prefix === 0x65) return quoted(raw, 2, "escape"); // E'
  if (prefix === 0x75) return unicodeEscapes(quoted(raw, 3, "standard")); // U&'
  return raw; // B'...' and X'...': bit strings stay as written
}

/** The body of a quoted constant from `from`, joining continuations ('a' newline 'b'). */
function quoted(raw: string, from: number, mode: "standard" | "escape"): string {
  let out = "";
  let i = from;
  while (i < raw.length) {
    const c = raw[i]!;
    if (c === "\\" && mode === "escape") {
      const [text, next] = backslashEscape(raw, i + 1);
      out += text;
      i = next;
    } else if (c === "'") {
      if (raw[i + 1] === "'") {
        out += "'";
        i += 2;
        continue;
      }
      const resume = continuation(raw, i + 1);
      if (resume < 0) break;
      i = resume;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** After a closing quote: where a continuation's body starts (past white space, comments and `'`), or -1. */
function continuation(raw: string, from: number): number {
  let i = from;
  while (i < raw.length) {
    const c = raw[i]!;
    if (c === "'") return i + 1;
    if (c === "-" && raw[i + 1] === "-") {
      while (i < raw.length && raw[i] !== "\n" && raw[i] !== "\r") i++;
    } else if (isSpace(c.charCodeAt(0))) i++;
    else return -1;
  }
  return -1;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

function backslashEscape(raw: string, at: number): [string, number] {
  const c = raw[at];
  if (c === undefined) return ["", at];
  const simple = SIMPLE_ESCAPES[c];
  if (simple !== undefined) return [simple, at + 1];
  const take = (re: RegExp, radix: number, skip: number): [string, number] | undefined => {
    const m = re.exec(raw.slice(at + skip));
    if (!m) return undefined;
    return [String.fromCodePoint(parseInt(m[0], radix)), at + skip + m[0].length];
  };
  if (c >= "0" && c <= "7") return take(/^[0-7]{1,3}/, 8, 0)!;
  if (c === "x") return take(/^[0-9a-fA-F]{1,2}/, 16, 1) ?? ["x", at + 1];
  if (c === "u") return take(/^[0-9a-fA-F]{4}/, 16, 1) ?? ["u", at + 1];
  if (c === "U") return take(/^[0-9a-fA-F]{8}/, 16, 1) ?? ["U", at + 1];
  return [c, at + 1];
}

/** U&'...' escapes with the default escape character: \XXXX, \+XXXXXX and \\. */
function unicodeEscapes(body: string): string {
  return body.replace(/\\(\\|[0-9a-fA-F]{4}|\+[0-9a-fA-F]{6})/g, (_, code: string) => {
    if (code === "\\") return "\\";
    return String.fromCodePoint(parseInt(code.startsWith("+") ? code.slice(1) : code, 16));
  });
}
