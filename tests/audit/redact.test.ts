import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { redactLiterals } from "../../src/audit/redact.ts";

describe("redactLiterals()", () => {
  it("masks string and number literals, keeps identifiers and placeholders", () => {
    assert.equal(
      redactLiterals("select * from t1 where name = 'alice' and age > 42 and x = $1"),
      "select * from t1 where name = ? and age > ? and x = $1",
    );
    assert.equal(
      redactLiterals("insert into t values ('it''s', -3.5e10, .5, 0x1F, 1_000, 0o17, 0b101, 1.5e-3)"),
      "insert into t values (?, -?, ?, ?, ?, ?, ?, ?)",
    );
    assert.equal(
      redactLiterals(`select "col 1", "a""b" from "t'x" where c = 'v'`),
      `select "col 1", "a""b" from "t'x" where c = ?`,
    );
    assert.equal(redactLiterals("select E'a\\'b', e'\\\\' , 'c'"), "select ?, ? , ?");
    assert.equal(redactLiterals("select $$secret 'x'$$, $tag$ more $$ $tag$, col2"), "select ?, ?, col2");
    assert.equal(redactLiterals("select a1, b_2, t.c3, a$b from x9"), "select a1, b_2, t.c3, a$b from x9");
  });

  it("masks bit strings, U&'' with UESCAPE and keeps U&\"\" identifiers", () => {
    assert.equal(redactLiterals("select B'1010', X'1F', b'0' || x'ff'"), "select ?, ?, ? || ?");
    assert.equal(
      redactLiterals(`select U&'d\\0061t\\+000061 secret' UESCAPE '!', U&"d!0061t" from t`),
      `select ? UESCAPE ?, U&"d!0061t" from t`,
    );
    // A bit string has no '' doubling: B'1''secret' is B'1' and then the string 'secret'.
    assert.equal(redactLiterals("select B'1''secret'"), "select ??");
  });

  it("drops the contents of comments, literals in them included", () => {
    assert.equal(redactLiterals("/* 42 */ select 1"), "/*?*/ select ?");
    assert.equal(redactLiterals("select 1 -- password 'hunter2'\n, 2"), "select ? --?\n, ?");
    assert.equal(redactLiterals("select /*app='billing'*/ c from t"), "select /*?*/ c from t");
  });

  it("follows nested block comments (a bypass: /* /* */ 'secret' */ hid nothing)", () => {
    // PostgreSQL nests: the first */ closes the inner comment, so 'secret' is still inside the outer one,
    // and the quote after the outer */ opens a real string.
    assert.equal(
      redactLiterals("select /* outer /* inner */ ' */ c, 'secret value' from t"),
      "select /*?*/ c, ? from t",
    );
    assert.equal(redactLiterals("select 1 /* a /* b */ c */ + 'x'"), "select ? /*?*/ + ?");
    assert.equal(redactLiterals("select 1 /* cut /* short */ 'x'"), "select ? /*?*/");
  });

  it("lets backslashes escape in plain literals when standard_conforming_strings is off", () => {
    const sql = "select 'a\\' , secret_token_value, ' from t";
    // Off: one literal 'a\' , secret_token_value, ' and then "from t".
    assert.equal(redactLiterals(sql, { standardConformingStrings: false }), "select ? from t");
    // On (the default): 'a\' is the whole literal, and the rest is not one.
    assert.equal(redactLiterals(sql), "select ? , secret_token_value, ?");
    assert.equal(
      redactLiterals("select 'x\\'; drop ' || 'secret'", { standardConformingStrings: false }),
      "select ? || ?",
    );
  });

  it("masks what either reading takes for a literal when standard_conforming_strings may be on or off", () => {
    const either = { standardConformingStrings: "either" } as const;
    assert.equal(redactLiterals("select 'a\\' , secret_token_value, ' from t", either), "select ?");
    assert.equal(redactLiterals("select 'a\\', 'b' from t", either), "select ?"); // off: ' from t is unterminated
    assert.equal(redactLiterals("select 'a\\b', 'c' from t", either), "select ?, ? from t"); // both readings agree
    assert.equal(
      redactLiterals("select 'plain', \"id\" from t where x = 1", either),
      'select ?, "id" from t where x = ?',
    );
  });

  it("reads non-ASCII dollar-quote tags as the server does", () => {
    assert.equal(redactLiterals("select $é$secret 'x' value$é$ as c"), "select ? as c");
    assert.equal(redactLiterals("select $日本$ secret $日本$, 1"), "select ?, ?");
    assert.equal(redactLiterals("select $tag_1$ a $tag$ b $tag_1$"), "select ?");
    // Not a tag: a digit cannot start one, and after an identifier '$' is part of the identifier.
    assert.equal(redactLiterals("select $1, a$b$c"), "select $1, a$b$c");
  });

  it("continues a string across a newline in the first part's mode", () => {
    assert.equal(redactLiterals("select E'a'\n'\\' secret' from t"), "select ? from t");
    assert.equal(redactLiterals("select 'a' -- note\n  'b' c"), "select ? c");
    assert.equal(redactLiterals("select 'a' 'b'"), "select ? ?");
  });

  it("masks an unterminated literal or comment to the end (truncated text)", () => {
    assert.equal(redactLiterals("select 'secret that was cut"), "select ?");
    assert.equal(redactLiterals("select $$body"), "select ?");
    assert.equal(redactLiterals("select $é$body $é"), "select ?");
    assert.equal(redactLiterals("select E'a\\"), "select ?");
    assert.equal(redactLiterals("select /* 'secret"), "select /*?*/");
  });
});
