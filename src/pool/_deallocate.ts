/**
 * Recognizes a simple Query that is exactly one `DEALLOCATE [PREPARE] name`, `DEALLOCATE [PREPARE] ALL` or
 * `DISCARD ALL` (comments, whitespace and one trailing semicolon allowed). Anything else, statements in a
 * batch included, is not recognized. Reads bytes; a query that does not start with `d` after blanks costs a
 * few comparisons and no allocation. https://www.postgresql.org/docs/current/sql-deallocate.html
 */

export type Deallocate = { all: true } | { all: false; name: string };

const decoder = new TextDecoder();

const lower = (b: number) => (b >= 0x41 && b <= 0x5a ? b + 32 : b);
const isSpace = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);
const isIdentStart = (b: number) => (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || b === 0x5f || b >= 0x80;
const isIdent = (b: number) => isIdentStart(b) || (b >= 0x30 && b <= 0x39) || b === 0x24;

/** Skips blanks and comments from `at`; returns the next offset, or -1 inside an unterminated comment. */
function skip(s: Uint8Array, at: number, end: number): number {
  while (at < end) {
    const b = s[at]!;
    if (isSpace(b)) at++;
    else if (b === 0x2d && s[at + 1] === 0x2d) {
      while (at < end && s[at] !== 0x0a) at++;
    } else if (b === 0x2f && s[at + 1] === 0x2a) {
      let depth = 1;
      at += 2;
      while (at < end && depth > 0) {
        if (s[at] === 0x2a && s[at + 1] === 0x2f) (depth--, at += 2);
        else if (s[at] === 0x2f && s[at + 1] === 0x2a) (depth++, at += 2);
        else at++;
      }
      if (depth > 0) return -1;
    } else break;
  }
  return at;
}

/** Offset after `word` (lowercase ASCII) at `at`, or -1. */
function keyword(s: Uint8Array, at: number, end: number, word: string): number {
  if (end - at < word.length) return -1;
  for (let i = 0; i < word.length; i++) if (lower(s[at + i]!) !== word.charCodeAt(i)) return -1;
  const next = at + word.length;
  return next < end && isIdent(s[next]!) ? -1 : next;
}

/** True when only blanks, comments and at most one semicolon remain from `at`. */
function atEnd(s: Uint8Array, at: number, end: number): boolean {
  at = skip(s, at, end);
  if (at < 0) return false;
  if (at < end && s[at] === 0x3b) at = skip(s, at + 1, end);
  return at === end;
}

/** `body` is a Query body: the query text and its NUL. */
export function readDeallocate(body: Uint8Array): Deallocate | undefined {
  let end = body.indexOf(0);
  if (end < 0) end = body.length;
  let at = skip(body, 0, end);
  if (at < 0 || at >= end || lower(body[at]!) !== 0x64) return undefined; // d
  let next = keyword(body, at, end, "discard");
  if (next >= 0) {
    at = skip(body, next, end);
    next = at < 0 ? -1 : keyword(body, at, end, "all");
    return next >= 0 && atEnd(body, next, end) ? { all: true } : undefined;
  }
  next = keyword(body, at, end, "deallocate");
  if (next < 0) return undefined;
  at = skip(body, next, end);
  if (at < 0) return undefined;
  const prepare = keyword(body, at, end, "prepare");
  if (prepare >= 0) {
    at = skip(body, prepare, end);
    if (at < 0) return undefined;
  }
  next = keyword(body, at, end, "all");
  if (next >= 0) return atEnd(body, next, end) ? { all: true } : undefined;
  if (at >= end) return undefined;
  if (body[at] === 0x22) { // "quoted identifier", "" inside stands for "
    const bytes: number[] = [];
    let i = at + 1;
    for (;;) {
      if (i >= end) return undefined;
      if (body[i] === 0x22) {
        if (body[i + 1] === 0x22) (bytes.push(0x22), i += 2);
        else break;
      } else bytes.push(body[i++]!);
    }
    if (bytes.length === 0 || !atEnd(body, i + 1, end)) return undefined;
    return { all: false, name: decoder.decode(Uint8Array.from(bytes)) };
  }
  if (!isIdentStart(body[at]!)) return undefined;
  let i = at;
  while (i < end && isIdent(body[i]!)) i++;
  if (!atEnd(body, i, end)) return undefined;
  // Unquoted identifiers fold to lower case (ASCII letters only, as PostgreSQL does).
  return { all: false, name: decoder.decode(body.subarray(at, i).map(lower)) };
}
