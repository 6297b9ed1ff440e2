/**
 * A lexer for PostgreSQL's SQL text that finds what redaction must hide: every string and number constant
 * and every comment, by the rules of the server's own scanner (src/backend/parser/scan.l, PostgreSQL 16+):
 * - strings: '...' ('' doubles a quote; with standard_conforming_strings off, backslashes escape too),
 *   E'...' (backslash escapes), U&'...' (no backslash escapes), B'...' and X'...' (no escapes at all),
 *   N'...' (a plain string after the identifier N), $$...$$ and $tag$...$tag$ (tags of identifier
 *   characters, non-ASCII included, no '$'), and the continuation of any quoted string across whitespace
 *   that holds a newline ('a'<newline>'b' is one constant, scanned in the first part's mode);
 * - numbers: 42, 1_000, 3.5, .5, 1.5e10, 0x1F, 0o17, 0b101;
 * - comments: -- to the end of the line, and nested /* ... *\/ blocks.
 * Identifiers (a$b, é, "quoted ""one""", U&"..."), parameters ($1), operators and punctuation are other
 * tokens. Text cut short is lexed as far as it goes: an unterminated constant or comment runs to the end.
 * Works on JavaScript strings: every non-ASCII code unit counts as the server's high-bit bytes do (they
 * are identifier characters), so decoded UTF-8 lexes as its bytes would.
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 */

export const SQL_TOKEN = {
  /** A string constant of any kind (also bit strings and dollar quotes). */
  STRING: 1,
  /** A numeric constant. */
  NUMBER: 2,
  /** A `--` line comment (without its newline). */
  LINE_COMMENT: 3,
  /** A `/* *\/` block comment, nested ones included. */
  BLOCK_COMMENT: 4,
  /** An identifier or keyword, unquoted. */
  IDENTIFIER: 5,
  /** A quoted identifier, "..." or U&"...". */
  QUOTED_IDENTIFIER: 6,
  /** A positional parameter: $1. */
  PARAMETER: 7,
  /** One character of anything else: whitespace, operators, punctuation. */
  OTHER: 8,
} as const;
export type SqlToken = typeof SQL_TOKEN[keyof typeof SQL_TOKEN];

export interface SqlLexerOptions {
  /** The session's standard_conforming_strings (default on, PostgreSQL's default since 9.1). */
  standardConformingStrings?: boolean;
}

const QUOTE = 0x27; // '
const DQUOTE = 0x22; // "
const BACKSLASH = 0x5c;
const DOLLAR = 0x24;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;
const DOT = 0x2e;
const UNDERSCORE = 0x5f;
const AMPERSAND = 0x26;

/** How a quoted string ends: which escapes it takes. */
const MODE_STANDARD = 0; // '' doubles a quote
const MODE_ESCAPE = 1; // '' and backslash escapes
const MODE_BIT = 2; // no escapes: the first quote ends it

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isLetter = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
/** ident_start and dolq_start: [A-Za-z\200-\377_]. */
const isIdentStart = (c: number) => isLetter(c) || c === UNDERSCORE || c >= 0x80;
/** dolq_cont: ident_start and digits (no '$'). */
const isTagCont = (c: number) => isIdentStart(c) || isDigit(c);
/** ident_cont: dolq_cont and '$'. */
const isIdentCont = (c: number) => isTagCont(c) || c === DOLLAR;
const isHexDigit = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isOctDigit = (c: number) => c >= 0x30 && c <= 0x37;
const isBinDigit = (c: number) => c === 0x30 || c === 0x31;
const isNewline = (c: number) => c === 0x0a || c === 0x0d;
/** non_newline_space: [ \t\f\v]. */
const isHorizontalSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0c || c === 0x0b;

/**
 * Walks the tokens of `text`: call {@link next} until it returns undefined; {@link start} and {@link end}
 * delimit the token it returned. Allocates nothing per token.
 */
export class SqlLexer {
  readonly #text: string;
  readonly #length: number;
  readonly #standardConformingStrings: boolean;
  #at = 0;
  /** Where the last token starts. */
  start = 0;
  /** Where the last token ends (exclusive). */
  end = 0;
  /** True when the last token (a constant, comment or quoted identifier) runs to the end unterminated. */
  unterminated = false;

  constructor(text: string, options: SqlLexerOptions = {}) {
    this.#text = text;
    this.#length = text.length;
    this.#standardConformingStrings = options.standardConformingStrings ?? true;
  }

  next(): SqlToken | undefined {
    const text = this.#text;
    const at = this.#at;
    if (at >= this.#length) return undefined;
    this.start = at;
    this.unterminated = false;
    const c = text.charCodeAt(at);
    const c1 = at + 1 < this.#length ? text.charCodeAt(at + 1) : -1;
    if (c === DASH && c1 === DASH) return this.#lineComment(at + 2);
    if (c === SLASH && c1 === STAR) return this.#blockComment(at + 2);
    if (c === QUOTE) {
      return this.#string(at + 1, this.#standardConformingStrings ? MODE_STANDARD : MODE_ESCAPE);
    }
    if (isIdentStart(c)) {
      if (c1 === QUOTE) {
        switch (c | 0x20) {
          case 0x62: // b'...': bit string
          case 0x78: // x'...': hex bit string
            return this.#string(at + 2, MODE_BIT);
          case 0x65: // e'...': escapes
            return this.#string(at + 2, MODE_ESCAPE);
        }
      } else if ((c | 0x20) === 0x75 && c1 === AMPERSAND) { // u&'...' and u&"..."
        const c2 = at + 2 < this.#length ? text.charCodeAt(at + 2) : -1;
        if (c2 === QUOTE) return this.#string(at + 3, MODE_STANDARD);
        if (c2 === DQUOTE) return this.#quotedIdentifier(at + 3);
      }
      let i = at + 1;
      while (i < this.#length && isIdentCont(text.charCodeAt(i))) i++;
      return this.#token(SQL_TOKEN.IDENTIFIER, i);
    }
    if (c === DQUOTE) return this.#quotedIdentifier(at + 1);
    if (c === DOLLAR) {
      if (isDigit(c1)) {
        let i = at + 2;
        while (i < this.#length && isDigit(text.charCodeAt(i))) i++;
        return this.#token(SQL_TOKEN.PARAMETER, i);
      }
      let i = at + 1;
      if (isIdentStart(c1)) {
        i++;
        while (i < this.#length && isTagCont(text.charCodeAt(i))) i++;
      }
      if (i < this.#length && text.charCodeAt(i) === DOLLAR) return this.#dollarQuoted(at, i + 1);
      // {dolqfailed}: the '$' alone; what follows is lexed again (as an identifier).
      return this.#token(SQL_TOKEN.OTHER, at + 1);
    }
    if (isDigit(c) || (c === DOT && isDigit(c1))) return this.#number(at);
    return this.#token(SQL_TOKEN.OTHER, at + 1);
  }

  #token(kind: SqlToken, end: number): SqlToken {
    this.end = end;
    this.#at = end;
    return kind;
  }

  #unterminated(kind: SqlToken): SqlToken {
    this.unterminated = true;
    return this.#token(kind, this.#length);
  }

  #lineComment(from: number): SqlToken {
    const text = this.#text;
    let i = from;
    while (i < this.#length && !isNewline(text.charCodeAt(i))) i++;
    return this.#token(SQL_TOKEN.LINE_COMMENT, i);
  }

  /** From just after the opening slash-star; `/*` nests, `*+/` closes one level. */
  #blockComment(from: number): SqlToken {
    const text = this.#text;
    let depth = 1;
    let i = from;
    while (i < this.#length) {
      const c = text.charCodeAt(i);
      if (c === SLASH && i + 1 < this.#length && text.charCodeAt(i + 1) === STAR) {
        depth++;
        i += 2;
      } else if (c === STAR && i + 1 < this.#length && text.charCodeAt(i + 1) === SLASH) {
        i += 2;
        if (--depth === 0) return this.#token(SQL_TOKEN.BLOCK_COMMENT, i);
      } else i++;
    }
    return this.#unterminated(SQL_TOKEN.BLOCK_COMMENT);
  }

  /** From just after the opening quote, in `mode`, through quote continuations. */
  #string(from: number, mode: number): SqlToken {
    const text = this.#text;
    const length = this.#length;
    let i = from;
    while (i < length) {
      const c = text.charCodeAt(i);
      if (c === BACKSLASH && mode === MODE_ESCAPE) {
        i += 2; // \' and \\ and every other escape: the next character is never the end
      } else if (c === QUOTE) {
        if (mode !== MODE_BIT && i + 1 < length && text.charCodeAt(i + 1) === QUOTE) {
          i += 2;
          continue;
        }
        const resume = this.#continuation(i + 1);
        if (resume < 0) return this.#token(SQL_TOKEN.STRING, i + 1);
        i = resume;
      } else i++;
    }
    return this.#unterminated(SQL_TOKEN.STRING);
  }

  /**
   * After a closing quote at `from - 1`: where the string goes on when {whitespace_with_newline}{quote}
   * follows (spaces and `--` comments, at least one newline, then a quote), else -1.
   */
  #continuation(from: number): number {
    const text = this.#text;
    const length = this.#length;
    let i = from;
    let newline = false;
    while (i < length) {
      const c = text.charCodeAt(i);
      if (isNewline(c)) {
        newline = true;
        i++;
      } else if (isHorizontalSpace(c)) i++;
      else if (c === DASH && i + 1 < length && text.charCodeAt(i + 1) === DASH) {
        i += 2;
        while (i < length && !isNewline(text.charCodeAt(i))) i++;
      } else if (c === QUOTE && newline) return i + 1;
      else return -1;
    }
    return -1;
  }

  /** From `$tag$` (at `from`, its end at `bodyStart`) to the same delimiter. */
  #dollarQuoted(from: number, bodyStart: number): SqlToken {
    const delimiter = this.#text.slice(from, bodyStart);
    const close = this.#text.indexOf(delimiter, bodyStart);
    if (close < 0) return this.#unterminated(SQL_TOKEN.STRING);
    return this.#token(SQL_TOKEN.STRING, close + delimiter.length);
  }

  /** From just after the opening double quote; `""` doubles one. */
  #quotedIdentifier(from: number): SqlToken {
    const text = this.#text;
    let i = from;
    while (i < this.#length) {
      if (text.charCodeAt(i) === DQUOTE) {
        if (i + 1 < this.#length && text.charCodeAt(i + 1) === DQUOTE) i += 2;
        else return this.#token(SQL_TOKEN.QUOTED_IDENTIFIER, i + 1);
      } else i++;
    }
    return this.#unterminated(SQL_TOKEN.QUOTED_IDENTIFIER);
  }

  /**
   * decinteger, hexinteger, octinteger, bininteger, numeric and real. What does not fit is left for the
   * next token, as the server's {realfail}/{numericfail} rules do (`1e` is 1 then e; `1..2` is 1, .., 2).
   */
  #number(from: number): SqlToken {
    const text = this.#text;
    const length = this.#length;
    const at = (i: number) => i < length ? text.charCodeAt(i) : -1;
    let i = from;
    if (at(i) === 0x30) {
      const radix = at(i + 1) | 0x20;
      const digit = radix === 0x78
        ? isHexDigit
        : radix === 0x6f
        ? isOctDigit
        : radix === 0x62
        ? isBinDigit
        : undefined;
      if (digit) {
        const end = this.#digits(i + 2, digit, true);
        if (end > i + 2) return this.#token(SQL_TOKEN.NUMBER, end);
      }
    }
    if (at(i) !== DOT) i = this.#digits(i, isDigit);
    if (at(i) === DOT && at(i + 1) !== DOT) {
      i++;
      if (isDigit(at(i))) i = this.#digits(i, isDigit);
    }
    if ((at(i) | 0x20) === 0x65) { // e: an exponent only when digits follow
      const sign = at(i + 1) === 0x2b || at(i + 1) === DASH ? 1 : 0;
      if (isDigit(at(i + 1 + sign))) i = this.#digits(i + 1 + sign, isDigit);
    }
    return this.#token(SQL_TOKEN.NUMBER, i);
  }

  /** `digit(_?digit)*` from `from`, or `(_?digit)+` after a 0x/0o/0b prefix; `from` when none. */
  #digits(from: number, digit: (c: number) => boolean, leadingUnderscore = false): number {
    const text = this.#text;
    let i = from;
    while (i < this.#length) {
      const c = text.charCodeAt(i);
      if (digit(c)) i++;
      else if (
        c === UNDERSCORE && (i > from || leadingUnderscore) && i + 1 < this.#length &&
        digit(text.charCodeAt(i + 1))
      ) i += 2;
      else break;
    }
    return i;
  }
}
