/**
 * Masks the literals of SQL text for the audit log, lexed as the server lexes it (sql_lexer.ts): every
 * string constant ('...', E'...', U&'...', B'...', X'...', $$...$$, $tag$...$tag$, continued strings) and
 * every numeric constant becomes `?`, prefix included; comments lose their contents (`/*?*\/`, `--?`),
 * since they can hold anything. Identifiers (also "quoted" ones), keywords, operators and parameter
 * placeholders ($1) stay. Works on truncated text: an unterminated literal or comment is masked to the end.
 * With `standardConformingStrings: false` (the session's parameter), backslashes escape in '...' too.
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 */
import { SQL_TOKEN, SqlLexer, type SqlLexerOptions } from "./sql_lexer.ts";

export type RedactOptions = SqlLexerOptions;

export function redactLiterals(sql: string, options: RedactOptions = {}): string {
  const lexer = new SqlLexer(sql, options);
  let out = "";
  let copied = 0;
  for (let token = lexer.next(); token !== undefined; token = lexer.next()) {
    let mask: string;
    switch (token) {
      case SQL_TOKEN.STRING:
      case SQL_TOKEN.NUMBER:
        mask = "?";
        break;
      case SQL_TOKEN.BLOCK_COMMENT:
        mask = "/*?*/";
        break;
      case SQL_TOKEN.LINE_COMMENT:
        mask = "--?";
        break;
      default:
        continue;
    }
    out += sql.slice(copied, lexer.start) + mask;
    copied = lexer.end;
  }
  return copied === 0 ? sql : out + sql.slice(copied);
}
