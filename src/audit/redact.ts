/**
 * Masks the literals of SQL text for the audit log, lexed as the server lexes it (sql_lexer.ts): every
 * string constant ('...', E'...', U&'...', B'...', X'...', $$...$$, $tag$...$tag$, continued strings) and
 * every numeric constant becomes `?`, prefix included; comments lose their contents (`/*?*\/`, `--?`),
 * since they can hold anything. Identifiers (also "quoted" ones), keywords, operators and parameter
 * placeholders ($1) stay. Works on truncated text: an unterminated literal or comment is masked to the end.
 * `standardConformingStrings`: the session's parameter; when off, backslashes escape in '...' too; when
 * "either" (the session has had it off, so a given query may have been read either way), whatever either
 * reading takes for a literal or comment is masked.
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 */
import { SQL_TOKEN, SqlLexer } from "./sql_lexer.ts";

export interface RedactOptions {
  /** The session's standard_conforming_strings (default true), or "either" when it may be on or off. */
  standardConformingStrings?: boolean | "either";
}

const maskOf = (token: number): string | undefined => {
  switch (token) {
    case SQL_TOKEN.STRING:
    case SQL_TOKEN.NUMBER:
      return "?";
    case SQL_TOKEN.BLOCK_COMMENT:
      return "/*?*/";
    case SQL_TOKEN.LINE_COMMENT:
      return "--?";
  }
  return undefined;
};

export function redactLiterals(sql: string, options: RedactOptions = {}): string {
  const mode = options.standardConformingStrings ?? true;
  if (mode === "either") return redactEitherWay(sql);
  const lexer = new SqlLexer(sql, { standardConformingStrings: mode });
  let out = "";
  let copied = 0;
  for (let token = lexer.next(); token !== undefined; token = lexer.next()) {
    const mask = maskOf(token);
    if (mask === undefined) continue;
    out += sql.slice(copied, lexer.start) + mask;
    copied = lexer.end;
  }
  return copied === 0 ? sql : out + sql.slice(copied);
}

/** The masked spans of one reading: [start, end, mask] in order. */
function maskedSpans(sql: string, standardConformingStrings: boolean): Array<[number, number, string]> {
  const spans: Array<[number, number, string]> = [];
  const lexer = new SqlLexer(sql, { standardConformingStrings });
  for (let token = lexer.next(); token !== undefined; token = lexer.next()) {
    const mask = maskOf(token);
    if (mask !== undefined) spans.push([lexer.start, lexer.end, mask]);
  }
  return spans;
}

/** Masks the union of both readings' spans; overlapping spans of the two merge into one `?`. */
function redactEitherWay(sql: string): string {
  const spans = [...maskedSpans(sql, true), ...maskedSpans(sql, false)].sort((a, b) =>
    a[0] - b[0] || b[1] - a[1]
  );
  let out = "";
  let copied = 0;
  let i = 0;
  while (i < spans.length) {
    let [start, end, mask] = spans[i]!;
    for (i++; i < spans.length && spans[i]![0] < end; i++) {
      const [, otherEnd, otherMask] = spans[i]!;
      if (otherEnd === end && otherMask === mask && spans[i]![0] === start) continue; // the same token
      end = Math.max(end, otherEnd);
      mask = "?";
    }
    out += sql.slice(copied, start) + mask;
    copied = end;
  }
  return copied === 0 ? sql : out + sql.slice(copied);
}
