import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pinReasonOf, sessionCommands } from "../../src/pool/session_commands.ts";
import { splitStatements } from "../../src/pool/sql_statements.ts";
import { pinError } from "../../src/pool/pin_reasons.ts";

const ops = (sql: string) => sessionCommands(sql);
const one = (sql: string) => {
  const all = ops(sql);
  assert.equal(all.length, 1, `one statement in ${sql}`);
  return all[0];
};

describe("splitStatements()", () => {
  it("splits at semicolons outside strings, dollar quotes, comments and quoted identifiers", () => {
    const sql = `SET a = 'x;y'; SELECT $$;$$ /* ; */ -- ;\n; SELECT ";" ;; DO $f$ BEGIN; END $f$`;
    const statements = splitStatements(sql);
    assert.deepEqual(statements.map((s) => s.map((w) => w.text)), [
      ["set", "a", "=", "x;y"],
      ["select", ";"],
      ["select", ";"],
      ["do", " BEGIN; END "],
    ]);
  });

  it("keeps a BEGIN ATOMIC function body and parenthesized rule actions whole", () => {
    const sql =
      "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; " +
      "SELECT 2; END; CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b); SET x = 1";
    assert.equal(splitStatements(sql).length, 3);
  });

  it("BEGIN in other CREATE statements does not hold the semicolon", () => {
    assert.equal(splitStatements("CREATE TABLE begin (a int); SELECT 1").length, 2);
    assert.equal(
      splitStatements("CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC SELECT 1; END; SELECT 2").length,
      2,
    );
  });

  it("decodes strings: doubled quotes, E escapes, U& escapes, continuations", () => {
    const words = splitStatements(
      "SELECT 'it''s', E'a\\'b\\n\\x41', U&'\\0041\\+000042', 'con'\n  'tinued'",
    )[0]!;
    assert.deepEqual(words.filter((w) => w.type === 1).map((w) => w.text), [
      "it's",
      "a'b\nA",
      "AB",
      "continued",
    ]);
  });

  it("with standard_conforming_strings off, backslashes escape in plain strings", () => {
    const words = splitStatements("SET a = 'x\\'; LISTEN y'", { standardConformingStrings: false });
    assert.equal(words.length, 1);
    assert.equal(words[0]!.at(-1)!.text, "x'; LISTEN y");
  });

  it("folds identifiers to lower case and unquotes quoted ones", () => {
    const words = splitStatements('SeT "Mixed""Case" TO Foo')[0]!;
    assert.deepEqual(words.map((w) => w.text), ["set", 'Mixed"Case', "to", "foo"]);
  });
});

describe("sessionCommands(): settings", () => {
  it("SET name = value / TO value, SESSION, quoted values, numbers", () => {
    assert.deepEqual(one("SET statement_timeout = '5s'"), [{
      op: "set",
      name: "statement_timeout",
      value: "5s",
    }]);
    assert.deepEqual(one("set SESSION work_mem TO 65536"), [{ op: "set", name: "work_mem", value: "65536" }]);
    assert.deepEqual(one("SET extra_float_digits = -3"), [{
      op: "set",
      name: "extra_float_digits",
      value: "-3",
    }]);
    assert.deepEqual(one("SET my.app_user = 'O''Brien'"), [{
      op: "set",
      name: "my.app_user",
      value: "O'Brien",
    }]);
    assert.deepEqual(one('SET "My"."Var" = on'), [{ op: "set", name: "My.Var", value: "on" }]);
  });

  it("search_path elements are stored as the server stores them", () => {
    assert.deepEqual(one(`SET search_path TO "My Schema", Public, '$user'`), [
      { op: "set", name: "search_path", value: `"My Schema", public, "$user"` },
    ]);
    assert.deepEqual(one("SET SCHEMA 'Sales'"), [{ op: "set", name: "search_path", value: `"Sales"` }]);
  });

  it("SET LOCAL, SET TRANSACTION and SET ... FROM CURRENT are not state", () => {
    assert.deepEqual(one("SET LOCAL search_path = a"), []);
    assert.deepEqual(one("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"), []);
    assert.deepEqual(one("SET search_path FROM CURRENT"), []);
  });

  it("SET ... = DEFAULT and RESET are resets; RESET ALL; SET TIME ZONE LOCAL", () => {
    assert.deepEqual(one("SET work_mem TO DEFAULT"), [{ op: "reset", name: "work_mem" }]);
    assert.deepEqual(one("RESET Work_Mem"), [{ op: "reset", name: "work_mem" }]);
    assert.deepEqual(one("RESET ALL"), [{ op: "reset_all" }]);
    assert.deepEqual(one("SET TIME ZONE LOCAL"), [{ op: "reset", name: "timezone" }]);
    assert.deepEqual(one("SET TIME ZONE 'Europe/Paris'"), [{
      op: "set",
      name: "timezone",
      value: "Europe/Paris",
    }]);
  });

  it("SET SESSION CHARACTERISTICS sets the default_transaction_* settings", () => {
    assert.deepEqual(
      one("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
      [
        { op: "set", name: "default_transaction_isolation", value: "repeatable read" },
        { op: "set", name: "default_transaction_read_only", value: "on" },
      ],
    );
  });

  it("SELECT set_config(name, value, false) with constants is a SET; is_local true is not", () => {
    assert.deepEqual(one("SELECT pg_catalog.set_config('search_path', 'a, \"B\"', false)"), [
      { op: "set", name: "search_path", value: `a, "B"` },
    ]);
    assert.deepEqual(one("SELECT set_config('x.y', '1', true)"), []);
    assert.deepEqual(one("SELECT set_config('x.y', $1, false)"), []);
    assert.deepEqual(one("SELECT set_config('x.y', '1', false) FROM t"), []);
  });

  it("function SET clauses and ALTER ... SET are not session state", () => {
    assert.deepEqual(
      one("CREATE FUNCTION f() RETURNS int SET search_path = a AS 'select 1' LANGUAGE sql"),
      [],
    );
    assert.deepEqual(one("ALTER ROLE bob SET work_mem = '1MB'"), []);
  });

  it("keywords inside strings and comments do nothing", () => {
    assert.deepEqual(ops("SELECT 'SET work_mem = 1; LISTEN x' -- LISTEN y\n/* PREPARE p AS SELECT 1 */"), [
      [],
    ]);
    assert.equal(pinReasonOf("SELECT $$ LISTEN a $$, 'pg_advisory_lock(1)'"), null);
  });
});

describe("sessionCommands(): transaction control", () => {
  it("BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT, AND CHAIN", () => {
    assert.deepEqual(
      ops(
        "BEGIN; START TRANSACTION READ ONLY; COMMIT; END WORK; ROLLBACK; ABORT; COMMIT AND CHAIN; ROLLBACK AND NO CHAIN",
      ),
      [
        [{ op: "begin" }],
        [{ op: "begin" }],
        [{ op: "commit", chain: false }],
        [{ op: "commit", chain: false }],
        [{ op: "rollback", chain: false }],
        [{ op: "rollback", chain: false }],
        [{ op: "commit", chain: true }],
        [{ op: "rollback", chain: false }],
      ],
    );
  });

  it("savepoints; PREPARE TRANSACTION; COMMIT PREPARED is not this session's", () => {
    assert.deepEqual(
      ops("SAVEPOINT A; RELEASE SAVEPOINT a; RELEASE b; ROLLBACK TO c; ROLLBACK WORK TO SAVEPOINT d"),
      [
        [{ op: "savepoint", name: "a" }],
        [{ op: "release", name: "a" }],
        [{ op: "release", name: "b" }],
        [{ op: "rollback_to", name: "c" }],
        [{ op: "rollback_to", name: "d" }],
      ],
    );
    assert.deepEqual(ops("PREPARE TRANSACTION 'x'; COMMIT PREPARED 'x'; ROLLBACK PREPARED 'y'"), [
      [{ op: "prepare_transaction" }],
      [],
      [],
    ]);
  });
});

describe("sessionCommands(): pins", () => {
  const cases: Array<[string, string | null]> = [
    ["LISTEN jobs", "listen"],
    ['listen "Jobs"', "listen"],
    ["SELECT pg_advisory_lock(42)", "advisory_lock"],
    ["select PG_TRY_ADVISORY_LOCK(1, 2)", "advisory_lock"],
    ["SELECT pg_catalog.pg_advisory_lock_shared($1)", "advisory_lock"],
    ["SELECT pg_advisory_xact_lock(42)", null],
    ["SELECT pg_try_advisory_xact_lock_shared(42)", null],
    ["CREATE TEMP TABLE t (a int)", "temp_table"],
    ["CREATE TEMPORARY TABLE IF NOT EXISTS t AS SELECT 1", "temp_table"],
    ["CREATE LOCAL TEMP SEQUENCE s", "temp_table"],
    ["CREATE OR REPLACE TEMP VIEW v AS SELECT 1", "temp_table"],
    ["CREATE TEMP RECURSIVE VIEW v (n) AS SELECT 1", "temp_table"],
    ["CREATE TEMP TABLE t (a int) ON COMMIT DROP", null],
    ["CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS", "temp_table"],
    ["CREATE TABLE pg_temp.t (a int)", "temp_table"],
    ["CREATE FUNCTION pg_temp.f() RETURNS int AS 'select 1' LANGUAGE sql", "temp_table"],
    ["CREATE TABLE t (a int)", null],
    ["CREATE INDEX ON pg_temp.t (a)", null],
    ["SELECT * INTO TEMP t FROM x", "temp_table"],
    ["SELECT * INTO t FROM x", null],
    ["DECLARE c CURSOR WITH HOLD FOR SELECT 1", "with_hold_cursor"],
    ["DECLARE c BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT 1", "with_hold_cursor"],
    ["DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", null],
    ["DECLARE c CURSOR FOR SELECT 1", null],
    ["PREPARE p (int) AS SELECT $1", "sql_prepare"],
    ["PREPARE TRANSACTION 'gid'", null],
    ["SET ROLE bob", "set_role"],
    ["SET role = 'bob'", "set_role"],
    ["SET SESSION AUTHORIZATION 'bob'", "set_role"],
    ["SET LOCAL ROLE bob", null],
    ["SET ROLE NONE", null],
    ["SELECT set_config('role', 'bob', false)", "set_role"],
    ["LOAD 'auto_explain'", "load"],
    ["DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$", null],
  ];
  for (const [sql, reason] of cases) {
    it(`${sql} → ${reason}`, () => assert.equal(pinReasonOf(sql), reason));
  }

  it("pinReasonOf() gives the first pinning statement of several", () => {
    assert.equal(pinReasonOf("SELECT 1; SET work_mem = 1; LISTEN a; LOAD 'x'"), "listen");
  });

  it("advisory lock keys: constants are read, other arguments and multi-row statements are not", () => {
    assert.deepEqual(one("SELECT pg_advisory_lock(42), pg_advisory_lock_shared(1, -2)"), [
      { op: "lock", key: "x:42" },
      { op: "lock", key: "s:1,-2" },
    ]);
    assert.deepEqual(one("SELECT pg_advisory_lock($1)"), [{ op: "lock", key: null }]);
    assert.deepEqual(one("SELECT pg_advisory_lock(id) FROM jobs"), [{ op: "lock", key: null }]);
    assert.deepEqual(one("SELECT pg_advisory_unlock(42), pg_advisory_unlock_shared('7')"), [
      { op: "unlock", key: "x:42" },
      { op: "unlock", key: "s:7" },
    ]);
    assert.deepEqual(one("SELECT pg_advisory_unlock($1)"), []);
    assert.deepEqual(one("SELECT pg_advisory_unlock(id) FROM jobs"), []);
    assert.deepEqual(one("SELECT pg_advisory_unlock_all()"), [{ op: "unlock_all" }]);
  });

  it("unpinning statements", () => {
    assert.deepEqual(
      ops(
        "UNLISTEN *; UNLISTEN Jobs; CLOSE ALL; CLOSE c; DEALLOCATE ALL; DEALLOCATE PREPARE p; RESET ROLE; RESET SESSION AUTHORIZATION; SET SESSION AUTHORIZATION DEFAULT; DISCARD TEMP; DROP TABLE IF EXISTS a, pg_temp.b, public.c",
      ),
      [
        [{ op: "unlisten", channel: null }],
        [{ op: "unlisten", channel: "jobs" }],
        [{ op: "close", name: null }],
        [{ op: "close", name: "c" }],
        [{ op: "deallocate", name: null }],
        [{ op: "deallocate", name: "p" }],
        [{ op: "role", set: false }],
        [{ op: "session_authorization", set: false }],
        [{ op: "session_authorization", set: false }],
        [{ op: "discard_temp" }],
        [{ op: "drop", names: ["a", "b"] }],
      ],
    );
  });

  it("DISCARD ALL clears everything DISCARD ALL clears", () => {
    const kinds = one("DISCARD ALL")!.map((op) => op.op).sort();
    assert.deepEqual(kinds, [
      "close",
      "deallocate",
      "discard_temp",
      "reset_all",
      "role",
      "session_authorization",
      "unlisten",
      "unlock_all",
    ]);
  });

  it("pinError() is a 0A000 ERROR naming the reason", () => {
    const error = pinError("listen");
    assert.equal(error.code, "0A000");
    assert.equal(error.severity, "ERROR");
    assert.match(error.message, /LISTEN cannot be used in transaction pooling mode/);
    assert.match(error.detail ?? "", /"listen"/);
  });
});

describe("sessionCommands(): the single-statement fast path agrees with the full one", () => {
  const cases: Array<[string, string | null]> = [
    ["select * from t", null],
    ["SELECT 1;", null],
    ["  /* a comment */ -- another\n LISTEN x", "listen"],
    ["listen x;  ", "listen"],
    ["UPDATE t SET a = 1", null],
    ["INSERT INTO t SELECT pg_advisory_lock(1)", "advisory_lock"],
    ["SELECT 'a;b'; LISTEN y", "listen"],
  ];
  for (const [sql, reason] of cases) {
    it(`${JSON.stringify(sql)} → ${reason}`, () => assert.equal(pinReasonOf(sql), reason));
  }

  it("UPDATE ... SET is not a SET statement", () => {
    assert.deepEqual(ops("UPDATE t SET a = 1"), [[]]);
    assert.deepEqual(ops("SELECT 1; UPDATE t SET a = 1"), [[], []]);
  });
});
