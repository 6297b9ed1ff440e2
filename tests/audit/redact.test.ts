import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { redactLiterals } from "../../src/audit/redact.ts";

describe("redactLiterals()", () => {
  it("masks string and number literals, keeps identifiers, placeholders and comments", () => {
    assert.equal(
      redactLiterals("select * from t1 where name = 'alice' and age > 42 and x = $1 -- note 'x'"),
      "select * from t1 where name = ? and age > ? and x = $1 -- note 'x'",
    );
    assert.equal(
      redactLiterals("insert into t values ('it''s', -3.5e10, .5, 0x1F)"),
      "insert into t values (?, -?, ?, ?)",
    );
    assert.equal(
      redactLiterals(`select "col 1", "a""b" from "t'x" where c = 'v'`),
      `select "col 1", "a""b" from "t'x" where c = ?`,
    );
    assert.equal(redactLiterals("select E'a\\'b', e'\\\\' , 'c'"), "select E?, e? , ?");
    assert.equal(redactLiterals("select $$secret 'x'$$, $tag$ more $$ $tag$, col2"), "select ?, ?, col2");
    assert.equal(redactLiterals("select a1, b_2, t.c3 from x9"), "select a1, b_2, t.c3 from x9");
    assert.equal(redactLiterals("/* 42 */ select 1"), "/* 42 */ select ?");
  });

  it("masks an unterminated literal to the end (truncated text)", () => {
    assert.equal(redactLiterals("select 'secret that was cut"), "select ?");
    assert.equal(redactLiterals("select $$body"), "select ?");
  });
});
