/**
 * The redaction lexer. Input: a flags byte (bit 0: standard_conforming_strings off) and SQL text.
 * - redact_grammar: random SQL from a token grammar whose literals and comments carry markers; property:
 *   no marker survives redaction (no literal from the input appears in the output).
 * - redact_mutate: mutated SQL (from real queries and grammar output); properties: nothing is thrown,
 *   redacting is idempotent, the output holds no literal and no comment content, it is not much longer
 *   than the input, and the lexer's tokens tile the input exactly.
 */
import { redactLiterals } from "../../../src/audit/redact.ts";
import { SQL_TOKEN, SqlLexer } from "../../../src/audit/sql_lexer.ts";
import type { Prng } from "../prng.ts";
import { check, type FuzzTarget, onlyDocumented } from "../target.ts";
import { MARKER, randomSql } from "./sql_grammar.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function decode(input: Uint8Array): { sql: string; standardConformingStrings: boolean } {
  return { sql: decoder.decode(input.subarray(1)), standardConformingStrings: ((input[0] ?? 0) & 1) === 0 };
}

export function encodeSqlInput(sql: string, standardConformingStrings: boolean): Uint8Array {
  const text = encoder.encode(sql);
  const out = new Uint8Array(1 + text.length);
  out[0] = standardConformingStrings ? 0 : 1;
  out.set(text, 1);
  return out;
}

function lex(sql: string, options: { standardConformingStrings: boolean }): Array<[number, number, number]> {
  const tokens: Array<[number, number, number]> = [];
  const lexer = new SqlLexer(sql, options);
  for (let token = lexer.next(); token !== undefined; token = lexer.next()) {
    tokens.push([token, lexer.start, lexer.end]);
  }
  return tokens;
}

function generate(rng: Prng): Uint8Array {
  const standardConformingStrings = rng.chance(0.7);
  return encodeSqlInput(randomSql(rng, standardConformingStrings), standardConformingStrings);
}

export const redactGrammarTarget: FuzzTarget = {
  name: "redact_grammar",
  maxLength: 8192,
  dictionary: [],
  generate,
  generateShare: 1,
  run(input) {
    const { sql, standardConformingStrings } = decode(input);
    let out: string;
    let either: string;
    try {
      out = redactLiterals(sql, { standardConformingStrings });
      either = redactLiterals(sql, { standardConformingStrings: "either" });
    } catch (error) {
      onlyDocumented(error, () => false, "redactLiterals");
      return;
    }
    const leak = MARKER.exec(out);
    check(
      !leak,
      `literal text ${JSON.stringify(leak?.[0])} survived: ${JSON.stringify(sql)} -> ${JSON.stringify(out)}`,
    );
    const eitherLeak = MARKER.exec(either);
    check(
      !eitherLeak,
      `literal text ${JSON.stringify(eitherLeak?.[0])} survived "either": ${JSON.stringify(sql)} -> ${
        JSON.stringify(either)
      }`,
    );
  },
};

export const redactMutateTarget: FuzzTarget = {
  name: "redact_mutate",
  maxLength: 4096,
  dictionary: [
    "'",
    "''",
    "E'",
    "e'",
    "B'",
    "X'",
    "U&'",
    'U&"',
    "N'",
    '"',
    "$$",
    "$a$",
    "$é$",
    "$1",
    "/*",
    "*/",
    "--",
    "\n",
    "\r",
    "\\",
    "\\'",
    " UESCAPE ",
    "0x",
    "1_0",
    ".5e",
    "é",
    "日",
  ],
  generate,
  generateShare: 0.2,
  run(input) {
    const { sql, standardConformingStrings } = decode(input);
    const options = { standardConformingStrings };
    let tokens: Array<[number, number, number]>;
    let out: string;
    let twice: string;
    let outTokens: Array<[number, number, number]>;
    try {
      tokens = lex(sql, options);
      out = redactLiterals(sql, options);
      twice = redactLiterals(out, options);
      outTokens = lex(out, options);
      // The union of both readings (no literal survives it: redact_grammar checks that) must not throw.
      redactLiterals(sql, { standardConformingStrings: "either" });
    } catch (error) {
      onlyDocumented(error, () => false, "SqlLexer/redactLiterals");
      return;
    }
    let end = 0;
    for (const [, start, stop] of tokens) {
      check(start === end && stop > start, `token at ${start}-${stop} after ${end}`);
      end = stop;
    }
    check(end === sql.length, `tokens end at ${end} of ${sql.length}`);
    check(
      twice === out,
      `not idempotent: ${JSON.stringify(sql)} -> ${JSON.stringify(out)} -> ${JSON.stringify(twice)}`,
    );
    check(out.length <= sql.length * 2 + 8, `output of ${out.length} for ${sql.length} characters`);
    for (const [token, start, stop] of outTokens) {
      const text = out.slice(start, stop);
      check(
        token !== SQL_TOKEN.STRING && token !== SQL_TOKEN.NUMBER &&
          (token !== SQL_TOKEN.BLOCK_COMMENT || text === "/*?*/") &&
          (token !== SQL_TOKEN.LINE_COMMENT || text === "--?"),
        `output keeps ${JSON.stringify(text)}: ${JSON.stringify(sql)} -> ${JSON.stringify(out)}`,
      );
    }
  },
};
