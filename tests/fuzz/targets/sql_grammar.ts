/**
 * Random SQL from a grammar of tokens, for the redaction property. Every literal (string or number)
 * and every comment carries a marker that must not survive redaction: `SECRET` in strings and comments,
 * `DEADBEEF` in hex numbers, a run of 9+ digits or a digit_digit pair in other numbers. Nothing else the
 * grammar makes contains a marker (identifiers are lower case with at most one trailing digit, quoted
 * identifiers hold no digits, parameters have at most 3 digits).
 * Tokens are always separated (space, newline, punctuation or an operator) so that adjacent tokens do not
 * merge, and a string that starts with a quote never follows a string across a newline unless the grammar
 * means a continuation.
 */
import type { Prng } from "../prng.ts";

/** Text in redacted output that can only come from a literal or comment of the input. */
export const MARKER = /SECRET|DEADBEEF|\d{9}|\d_\d/;

const CONTENT_CHARS = [
  "a",
  "b",
  " ",
  "\n",
  "\t",
  ",",
  ";",
  "(",
  ")",
  "-",
  "--",
  "/",
  "*",
  "/*",
  "*/",
  '"',
  "$",
  "$$",
  "$a$",
  "é",
  "日",
  "\u00a0",
  "\r",
  "\\",
  "x",
  "E",
  "U&",
  "?",
  ":",
  "=",
  "\0",
];
const IDENT_START = ["a", "b", "e", "n", "u", "x", "z", "_", "é", "日", "ß"];
const IDENT_CONT = [...IDENT_START, "$", "q"];
const TAG_CHARS = ["a", "t", "_", "é", "日", "Q"];
const SEPARATORS = [
  " ",
  "\n",
  "\t",
  " , ",
  ",",
  "(",
  ")",
  " + ",
  " || ",
  ";\n",
  " = ",
  "::",
  " <> ",
  "\r\n",
  "\f",
  "\v",
  " ~ ",
  " @ ",
  "[",
  "]",
  " % ",
];

let counter = 0;
const marker = () => `SECRET${counter++ % 1000}`;

/** Random literal content as pieces: markers among hostile characters; `avoid` are pieces left out. */
function pieces(rng: Prng, avoid: (piece: string) => boolean): string[] {
  const out: string[] = [];
  const n = rng.below(6);
  for (let i = 0; i < n; i++) {
    const piece = rng.chance(0.3) ? marker() : rng.pick(CONTENT_CHARS);
    if (!avoid(piece)) out.push(piece);
  }
  if (rng.chance(0.7)) out.push(marker());
  return out;
}

const content = (rng: Prng, avoid: (piece: string) => boolean) => pieces(rng, avoid).join("");

/** Content of a string in a mode: '' doubles a quote; with escapes, a backslash takes the next character. */
function stringBody(rng: Prng, mode: "standard" | "escape" | "bit"): string {
  const parts = pieces(rng, (p) => p.includes("'") || (mode === "escape" && p.includes("\\")));
  if (mode !== "bit") {
    const extras = rng.below(3);
    for (let i = 0; i < extras; i++) {
      const piece = mode === "escape"
        ? rng.pick(["''", "\\'", "\\\\", "\\n", "\\x41", "\\u00e9", "\\0"])
        : "''";
      parts.splice(rng.below(parts.length + 1), 0, piece);
    }
  }
  return parts.join("");
}

/** A quoted string in `mode`, sometimes continued over newline-holding whitespace. */
function quoted(rng: Prng, mode: "standard" | "escape" | "bit"): string {
  let text = `'${stringBody(rng, mode)}'`;
  while (rng.chance(0.15)) {
    text += rng.pick(["\n", " \n ", " -- c\n", "\r", "\n-- x\n\t"]) + `'${stringBody(rng, mode)}'`;
  }
  return text;
}

interface Token {
  text: string;
  /** Starts with a quote (and could continue a string before it). */
  quoteFirst: boolean;
  /** Is a string constant. */
  string: boolean;
  /** Ends in a line comment: what follows must start with a newline. */
  lineComment: boolean;
}

const token = (text: string, quoteFirst = false, string = false, lineComment = false): Token => ({
  text,
  quoteFirst,
  string,
  lineComment,
});

function blockComment(rng: Prng, depth = 0): string {
  let text = "/*";
  const n = rng.below(4);
  for (let i = 0; i < n; i++) {
    if (depth < 3 && rng.chance(0.25)) text += blockComment(rng, depth + 1);
    else {text += content(rng, (p) => p.includes("/") || p.includes("*")).replaceAll("/", "").replaceAll(
        "*",
        "",
      );}
  }
  return text + (rng.chance(0.5) ? marker() : "") + "*/";
}

function identifier(rng: Prng): string {
  let text = rng.pick(IDENT_START);
  const n = rng.below(6);
  for (let i = 0; i < n; i++) text += rng.pick(IDENT_CONT);
  if (rng.chance(0.2)) text += String(rng.below(10));
  return text;
}

function number(rng: Prng): string {
  const digits = (n: number) => {
    let text = String(1 + rng.below(9));
    for (let i = 1; i < n; i++) text += String(rng.below(10));
    return text;
  };
  switch (rng.below(7)) {
    case 0:
      return digits(9 + rng.below(4));
    case 1:
      return `${digits(9)}.${digits(1 + rng.below(3))}`;
    case 2:
      return `.${digits(9)}${rng.pick(["", "e10", "E-3", "e+2"])}`;
    case 3:
      return `${digits(9)}${rng.pick(["e10", "E-3", "e+22", "."])}`;
    case 4:
      return `${digits(1)}_${digits(3)}_${digits(3)}`;
    case 5:
      return `0x${rng.pick(["", "_"])}DEADBEEF${rng.pick(["", "_1F", "a"])}`;
    default:
      return rng.pick(["0o", "0O", "0b", "0B"]) + "1".repeat(9) + rng.pick(["", "_1", "0"]);
  }
}

function dollarQuoted(rng: Prng): string {
  let tag = "";
  if (rng.chance(0.7)) {
    tag = rng.pick(TAG_CHARS);
    const n = rng.below(4);
    for (let i = 0; i < n; i++) tag += rng.chance(0.2) ? String(rng.below(10)) : rng.pick(TAG_CHARS);
  }
  const delimiter = `$${tag}$`;
  let body = content(rng, () => false);
  while (body.includes(delimiter)) body = body.replaceAll(delimiter, "");
  return delimiter + body + delimiter;
}

function nextToken(rng: Prng, standardConformingStrings: boolean): Token {
  switch (rng.below(16)) {
    case 0:
    case 1:
      return token(quoted(rng, standardConformingStrings ? "standard" : "escape"), true, true);
    case 2:
      return token(rng.pick(["E", "e"]) + quoted(rng, "escape"), false, true);
    case 3:
      return token(rng.pick(["B", "b", "X", "x"]) + quoted(rng, "bit"), false, true);
    case 4:
      return token(
        rng.pick(["U&", "u&"]) + quoted(rng, "standard") +
          (rng.chance(0.3) ? ` UESCAPE '${rng.pick(["!", "#"])}'` : ""),
        false,
        true,
      );
    case 5:
      return token(
        rng.pick(["N", "n"]) + quoted(rng, standardConformingStrings ? "standard" : "escape"),
        false,
        true,
      );
    case 6:
      return token(dollarQuoted(rng), false, true);
    case 7:
      return token(number(rng));
    case 8:
      return token(blockComment(rng));
    case 9:
      return token(`--${content(rng, (p) => p.includes("\n") || p.includes("\r"))}`, false, false, true);
    case 10:
      return token(
        `"${identifier(rng).replaceAll(/\d/g, "")}${rng.pick(["", '""', "'", " $$ ", "--", "/*", "\\"])}"`,
      );
    case 11:
      return token(`${rng.pick(["U&", "u&"])}"${identifier(rng).replaceAll(/\d/g, "")}"`);
    case 12:
      return token(`$${1 + rng.below(999)}`);
    default:
      return token(
        rng.pick(["select", "from", "where", "and", "insert", "values", identifier(rng), identifier(rng)]),
      );
  }
}

/** SQL text of random tokens; sometimes cut short at a random point (as max_query_length cuts). */
export function randomSql(rng: Prng, standardConformingStrings: boolean): string {
  let sql = "";
  let previous: Token | undefined;
  /** The last token other than a comment was a string: a quote after it may continue it. */
  let afterString = false;
  const n = 1 + rng.below(12);
  for (let i = 0; i < n; i++) {
    const next = nextToken(rng, standardConformingStrings);
    if (previous) {
      let separator = rng.pick(SEPARATORS);
      if (previous.lineComment) separator = "\n" + separator;
      // Only a newline (and -- comments) between a string and a quote would continue that string.
      if (afterString && next.quoteFirst) separator += ", ";
      sql += separator;
    }
    sql += next.text;
    const comment = next.lineComment || next.text.startsWith("/*");
    if (!comment) afterString = next.string;
    previous = next;
  }
  if (rng.chance(0.2)) sql = sql.slice(0, rng.below(sql.length + 1));
  return sql;
}
