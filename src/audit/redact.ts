/**
 * Masks the literals of SQL text for the audit log: string constants ('...', E'...', $$...$$, $tag$...$tag$)
 * and numeric constants become `?`. Identifiers (also "quoted" ones), keywords, comments and parameter
 * placeholders ($1) stay. Works on truncated text: an unterminated literal is masked to the end.
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 */

const isIdentChar = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}_$]/u.test(c);
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

export function redactLiterals(sql: string): string {
  let out = "";
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === "-" && next === "-") {
      const end = sql.indexOf("\n", i);
      const stop = end < 0 ? n : end;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = sql.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === '"') {
      let j = i + 1;
      while (j < n) {
        if (sql[j] === '"') {
          if (sql[j + 1] === '"') j += 2;
          else break;
        } else j++;
      }
      out += sql.slice(i, Math.min(j + 1, n));
      i = j + 1;
    } else if (c === "'") {
      // E'...' takes backslash escapes; the E was copied as an identifier character just before.
      const escapes = (sql[i - 1] === "E" || sql[i - 1] === "e") && !isIdentChar(sql[i - 2]);
      let j = i + 1;
      while (j < n) {
        if (escapes && sql[j] === "\\") j += 2;
        else if (sql[j] === "'") {
          if (sql[j + 1] === "'") j += 2;
          else break;
        } else j++;
      }
      out += "?";
      i = j + 1;
    } else if (c === "$" && !isIdentChar(sql[i - 1])) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 66));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        out += "?";
        i = end < 0 ? n : end + tag[0].length;
      } else {
        // $1: a parameter placeholder, kept.
        let j = i + 1;
        while (isDigit(sql[j])) j++;
        out += sql.slice(i, j);
        i = j;
      }
    } else if ((isDigit(c) || (c === "." && isDigit(next))) && !isIdentChar(sql[i - 1])) {
      const number =
        /^(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)/
          .exec(sql.slice(i, i + 400));
      out += "?";
      i += number ? number[0].length : 1;
    } else if (isIdentChar(c)) {
      let j = i + 1;
      while (isIdentChar(sql[j])) j++;
      out += sql.slice(i, j);
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
