import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SessionState, type SettingsView } from "../../src/pool/session_state.ts";
import type { PinReason } from "../../src/pool/pin_reasons.ts";

const I = "I".charCodeAt(0);
const T = "T".charCodeAt(0);
const E = "E".charCodeAt(0);

/** Runs a simple Query whose statements all succeed, with the CommandComplete tags the server sends. */
function run(state: SessionState, sql: string, tags: string[], status = I): void {
  state.query(sql);
  for (const tag of tags) state.commandComplete(tag);
  state.ready(status);
}

/** A simple Query whose statement number `failAt` (0-based) fails. */
function runFailing(state: SessionState, sql: string, okTags: string[], status: number): void {
  state.query(sql);
  for (const tag of okTags) state.commandComplete(tag);
  state.error();
  state.ready(status);
}

const settings = (state: SessionState) => Object.fromEntries(state.settings);
const empty: SettingsView = { reported: new Map(), settings: new Map() };

describe("SessionState: settings and transactions", () => {
  it("a SET in an implicit transaction commits at ReadyForQuery I", () => {
    const state = new SessionState();
    state.query("SET statement_timeout = '5s'");
    state.commandComplete("SET");
    assert.deepEqual(settings(state), {}, "not before the transaction ends");
    state.ready(I);
    assert.deepEqual(settings(state), { statement_timeout: "5s" });
  });

  it("a failing statement in a multi-statement Query rolls back its SETs", () => {
    const state = new SessionState();
    runFailing(state, "SET work_mem = '8MB'; SELECT 1/0", ["SET"], I);
    assert.deepEqual(settings(state), {});
  });

  it("a SET that fails does not count", () => {
    const state = new SessionState();
    runFailing(state, "SET work_mem = 'lots'", [], I);
    assert.deepEqual(settings(state), {});
  });

  it("inside BEGIN ... COMMIT the SET is tentative, kept at COMMIT", () => {
    const state = new SessionState();
    run(state, "BEGIN; SET search_path = a", ["BEGIN", "SET"], T);
    assert.deepEqual(settings(state), {});
    assert.equal(state.inTransaction, true);
    run(state, "COMMIT", ["COMMIT"]);
    assert.deepEqual(settings(state), { search_path: "a" });
  });

  it("ROLLBACK drops it; COMMIT of a failed transaction (tag ROLLBACK) drops it", () => {
    const state = new SessionState();
    run(state, "BEGIN; SET search_path = a", ["BEGIN", "SET"], T);
    run(state, "ROLLBACK", ["ROLLBACK"]);
    assert.deepEqual(settings(state), {});
    run(state, "BEGIN", ["BEGIN"], T);
    run(state, "SET search_path = b", ["SET"], T);
    runFailing(state, "SELECT 1/0", [], E);
    run(state, "COMMIT", ["ROLLBACK"]);
    assert.deepEqual(settings(state), {});
  });

  it("an error inside a block does not drop the block's SETs until it ends", () => {
    const state = new SessionState();
    run(state, "BEGIN; SET work_mem = 1", ["BEGIN", "SET"], T);
    run(state, "SAVEPOINT s", ["SAVEPOINT"], T);
    runFailing(state, "SELECT 1/0", [], E);
    run(state, "ROLLBACK TO s", ["ROLLBACK"], T);
    run(state, "COMMIT", ["COMMIT"]);
    assert.deepEqual(settings(state), { work_mem: "1" });
  });

  it("ROLLBACK TO SAVEPOINT drops what came after the savepoint, RELEASE keeps it", () => {
    const state = new SessionState();
    run(
      state,
      "BEGIN; SET a.x = 1; SAVEPOINT one; SET a.y = 2; SAVEPOINT two; SET a.z = 3; RELEASE two; " +
        "ROLLBACK TO SAVEPOINT one; SET a.w = 4; SAVEPOINT three; SET a.v = 5; RELEASE three; COMMIT",
      [
        "BEGIN",
        "SET",
        "SAVEPOINT",
        "SET",
        "SAVEPOINT",
        "SET",
        "RELEASE",
        "ROLLBACK",
        "SET",
        "SAVEPOINT",
        "SET",
        "RELEASE",
        "COMMIT",
      ],
    );
    assert.deepEqual(settings(state), { "a.x": "1", "a.w": "4", "a.v": "5" });
  });

  it("a savepoint name reused: ROLLBACK TO goes to the innermost", () => {
    const state = new SessionState();
    run(state, "BEGIN; SAVEPOINT s; SET a.x = 1; SAVEPOINT s; SET a.y = 2; ROLLBACK TO s; COMMIT", [
      "BEGIN",
      "SAVEPOINT",
      "SET",
      "SAVEPOINT",
      "SET",
      "ROLLBACK",
      "COMMIT",
    ]);
    assert.deepEqual(settings(state), { "a.x": "1" });
  });

  it("COMMIT AND CHAIN commits and stays in a block", () => {
    const state = new SessionState();
    run(state, "BEGIN; SET a.x = 1; COMMIT AND CHAIN; SET a.y = 2", ["BEGIN", "SET", "COMMIT", "SET"], T);
    assert.deepEqual(settings(state), { "a.x": "1" });
    run(state, "ROLLBACK", ["ROLLBACK"]);
    assert.deepEqual(settings(state), { "a.x": "1" });
  });

  it("SET LOCAL is never state; a later RESET is", () => {
    const state = new SessionState();
    run(state, "SET work_mem = 1; SET LOCAL work_mem = 2", ["SET", "SET"]);
    assert.deepEqual(settings(state), { work_mem: "1" });
    run(state, "RESET work_mem", ["RESET"]);
    assert.deepEqual(settings(state), {});
  });

  it("RESET returns to the startup value; RESET ALL and DISCARD ALL to all of them", () => {
    const state = new SessionState({ startup: [["search_path", "a,B"], ["statement_timeout", "1s"]] });
    assert.deepEqual(settings(state), { search_path: "a,B", statement_timeout: "1s" });
    run(state, "SET search_path = x; SET statement_timeout = 0; SET work_mem = 1", ["SET", "SET", "SET"]);
    run(state, "RESET search_path", ["RESET"]);
    assert.deepEqual(settings(state), { search_path: "a,B", statement_timeout: "0", work_mem: "1" });
    run(state, "RESET ALL", ["RESET"]);
    assert.deepEqual(settings(state), { search_path: "a,B", statement_timeout: "1s" });
    run(state, "SET work_mem = 1", ["SET"]);
    run(state, "DISCARD ALL", ["DISCARD ALL"]);
    assert.deepEqual(settings(state), { search_path: "a,B", statement_timeout: "1s" });
  });

  it("reported settings come from ParameterStatus, not from SET text", () => {
    const state = new SessionState({ parameters: [["TimeZone", "UTC"], ["DateStyle", "ISO, MDY"]] });
    state.query("SET TIME ZONE 'Europe/Paris'; SET datestyle = 'German'");
    state.commandComplete("SET");
    state.parameterStatus("TimeZone", "Europe/Paris");
    state.commandComplete("SET");
    state.parameterStatus("DateStyle", "German, DMY");
    state.ready(I);
    assert.deepEqual(settings(state), {});
    assert.equal(state.reported.get("timezone"), "Europe/Paris");
    assert.equal(state.reported.get("datestyle"), "German, DMY");
  });

  it("extended protocol: SET via Parse/Bind/Execute commits at Sync's ReadyForQuery", () => {
    const state = new SessionState();
    state.parse("", "SET work_mem = '2MB'");
    state.bind("", "");
    state.execute("");
    state.sync();
    state.commandComplete("SET");
    assert.deepEqual(settings(state), {});
    state.ready(I);
    assert.deepEqual(settings(state), { work_mem: "2MB" });
  });

  it("extended protocol: an error skips to Sync and rolls back the implicit transaction", () => {
    const state = new SessionState();
    state.parse("s1", "SET work_mem = '2MB'");
    state.parse("s2", "SELECT 1/0");
    state.parse("s3", "SET a.b = 1");
    state.bind("", "s1");
    state.execute("");
    state.bind("", "s2");
    state.execute("");
    state.bind("", "s3");
    state.execute("");
    state.sync();
    state.bind("", "s3");
    state.execute("");
    state.sync();
    state.commandComplete("SET");
    state.error(); // s2; s3's first Execute is skipped
    state.ready(I);
    state.commandComplete("SET"); // s3 after the second Sync
    state.ready(I);
    assert.deepEqual(settings(state), { "a.b": "1" });
  });

  it("a named statement executed twice counts its operations per Bind", () => {
    const state = new SessionState();
    state.parse("lock", "SELECT pg_advisory_lock(7)");
    for (let i = 0; i < 2; i++) {
      state.bind("", "lock");
      state.execute("");
      state.sync();
      state.commandComplete("SELECT 1");
      state.ready(I);
    }
    state.query("SELECT pg_advisory_unlock(7)");
    state.commandComplete("SELECT 1");
    state.ready(I);
    assert.equal(state.pinned, "advisory_lock", "locked twice, unlocked once");
    state.query("SELECT pg_advisory_unlock(7)");
    state.commandComplete("SELECT 1");
    state.ready(I);
    assert.equal(state.pinned, null);
  });

  it("pipelined simple Queries: the error of the second does not touch the first", () => {
    const state = new SessionState();
    state.query("SET a.x = 1");
    state.query("SET a.y = 2; SELECT 1/0");
    state.query("SET a.z = 3");
    state.commandComplete("SET");
    state.ready(I);
    state.commandComplete("SET");
    state.error();
    state.ready(I);
    state.commandComplete("SET");
    state.ready(I);
    assert.deepEqual(settings(state), { "a.x": "1", "a.z": "3" });
  });

  it("PREPARE TRANSACTION keeps the transaction's SETs, as the server does", () => {
    const state = new SessionState();
    run(state, "BEGIN; SET a.x = 1; PREPARE TRANSACTION 'g'", ["BEGIN", "SET", "PREPARE TRANSACTION"]);
    assert.deepEqual(settings(state), { "a.x": "1" });
  });

  it("with standard_conforming_strings off, the text is lexed that way", () => {
    const state = new SessionState({ parameters: [["standard_conforming_strings", "off"]] });
    run(state, "SET a.x = 'it\\'s; LISTEN y'", ["SET"]);
    assert.deepEqual(settings(state), { "a.x": "it's; LISTEN y" });
    assert.equal(state.pinned, null);
  });
});

describe("SessionState: pins", () => {
  function tracked() {
    const events: Array<[PinReason, boolean]> = [];
    const state = new SessionState({ onPinChange: (reason, held) => events.push([reason, held]) });
    return { state, events };
  }

  it("LISTEN pins at commit; UNLISTEN of the last channel unpins", () => {
    const { state, events } = tracked();
    run(state, "BEGIN; LISTEN a", ["BEGIN", "LISTEN"], T);
    assert.equal(state.pinned, null, "LISTEN takes effect at commit");
    run(state, "LISTEN B; COMMIT", ["LISTEN", "COMMIT"]);
    assert.equal(state.pinned, "listen");
    run(state, "UNLISTEN a", ["UNLISTEN"]);
    assert.equal(state.pinned, "listen");
    run(state, "UNLISTEN b", ["UNLISTEN"]);
    assert.equal(state.pinned, null);
    assert.deepEqual(events, [["listen", true], ["listen", false]]);
  });

  it("LISTEN in a rolled-back transaction never pins; a failed LISTEN never pins", () => {
    const { state, events } = tracked();
    run(state, "BEGIN; LISTEN a; ROLLBACK", ["BEGIN", "LISTEN", "ROLLBACK"]);
    runFailing(state, "LISTEN a; SELECT 1/0", ["LISTEN"], I);
    assert.equal(state.pinned, null);
    assert.deepEqual(events, []);
  });

  it("UNLISTEN * unpins", () => {
    const { state } = tracked();
    run(state, "LISTEN a; LISTEN b", ["LISTEN", "LISTEN"]);
    run(state, "UNLISTEN *", ["UNLISTEN"]);
    assert.equal(state.pinned, null);
  });

  it("session advisory locks pin at once, even in a transaction that rolls back", () => {
    const { state } = tracked();
    run(state, "BEGIN; SELECT pg_advisory_lock(1)", ["BEGIN", "SELECT 1"], T);
    assert.equal(state.pinned, "advisory_lock");
    run(state, "ROLLBACK", ["ROLLBACK"]);
    assert.equal(state.pinned, "advisory_lock");
    run(state, "SELECT pg_advisory_unlock(2)", ["SELECT 1"]);
    assert.equal(state.pinned, "advisory_lock", "unlock of a key not held");
    run(state, "SELECT pg_advisory_unlock_shared(1)", ["SELECT 1"]);
    assert.equal(state.pinned, "advisory_lock", "unlock of the other mode");
    run(state, "SELECT pg_advisory_unlock(1)", ["SELECT 1"]);
    assert.equal(state.pinned, null);
  });

  it("locks with keys pgrelay cannot read are released only by pg_advisory_unlock_all() or DISCARD ALL", () => {
    const { state } = tracked();
    run(state, "SELECT pg_advisory_lock($1)", ["SELECT 1"]);
    run(state, "SELECT pg_advisory_unlock($1)", ["SELECT 1"]);
    assert.equal(state.pinned, "advisory_lock");
    run(state, "SELECT pg_advisory_unlock_all()", ["SELECT 1"]);
    assert.equal(state.pinned, null);
    run(state, "SELECT pg_try_advisory_lock(id) FROM jobs", ["SELECT 3"]);
    assert.equal(state.pinned, "advisory_lock");
    run(state, "DISCARD ALL", ["DISCARD ALL"]);
    assert.equal(state.pinned, null);
  });

  it("temporary tables: DROP of each, DISCARD TEMP; ON COMMIT DROP never pins", () => {
    const { state } = tracked();
    run(state, "CREATE TEMP TABLE t1 (a int) ON COMMIT DROP", ["CREATE TABLE"]);
    assert.equal(state.pinned, null);
    run(state, "CREATE TEMP TABLE t1 (a int); CREATE TEMP TABLE T2 (a int)", [
      "CREATE TABLE",
      "CREATE TABLE",
    ]);
    assert.equal(state.pinned, "temp_table");
    run(state, "DROP TABLE t1", ["DROP TABLE"]);
    assert.equal(state.pinned, "temp_table");
    run(state, "DROP TABLE pg_temp.t2", ["DROP TABLE"]);
    assert.equal(state.pinned, null);
    run(state, "CREATE TEMP SEQUENCE s; CREATE TEMP VIEW v AS SELECT 1", ["CREATE SEQUENCE", "CREATE VIEW"]);
    run(state, "DISCARD TEMP", ["DISCARD TEMP"]);
    assert.equal(state.pinned, null);
  });

  it("a temp table created in a rolled-back transaction does not pin", () => {
    const { state } = tracked();
    run(state, "BEGIN; CREATE TEMP TABLE t (a int); ROLLBACK", ["BEGIN", "CREATE TABLE", "ROLLBACK"]);
    assert.equal(state.pinned, null);
  });

  it("WITH HOLD cursors: CLOSE of the last, CLOSE ALL", () => {
    const { state } = tracked();
    run(
      state,
      "BEGIN; DECLARE a CURSOR WITH HOLD FOR SELECT 1; DECLARE b CURSOR WITH HOLD FOR SELECT 1; COMMIT",
      [
        "BEGIN",
        "DECLARE CURSOR",
        "DECLARE CURSOR",
        "COMMIT",
      ],
    );
    assert.equal(state.pinned, "with_hold_cursor");
    run(state, "CLOSE a", ["CLOSE CURSOR"]);
    assert.equal(state.pinned, "with_hold_cursor");
    run(state, "CLOSE b", ["CLOSE CURSOR"]);
    assert.equal(state.pinned, null);
    run(state, "DECLARE c CURSOR WITH HOLD FOR SELECT 1", ["DECLARE CURSOR"]);
    run(state, "CLOSE ALL", ["CLOSE CURSOR ALL"]);
    assert.equal(state.pinned, null);
  });

  it("SQL PREPARE: DEALLOCATE of the last, DEALLOCATE ALL", () => {
    const { state } = tracked();
    run(state, "PREPARE a AS SELECT 1; PREPARE b AS SELECT 2", ["PREPARE", "PREPARE"]);
    run(state, "DEALLOCATE a", ["DEALLOCATE"]);
    assert.equal(state.pinned, "sql_prepare");
    run(state, "DEALLOCATE PREPARE b", ["DEALLOCATE"]);
    assert.equal(state.pinned, null);
    run(state, "PREPARE c AS SELECT 1", ["PREPARE"]);
    run(state, "DEALLOCATE ALL", ["DEALLOCATE ALL"]);
    assert.equal(state.pinned, null);
  });

  it("SET ROLE / SESSION AUTHORIZATION: RESET ROLE, SET ROLE NONE, RESET SESSION AUTHORIZATION", () => {
    const { state } = tracked();
    run(state, "SET ROLE bob", ["SET"]);
    assert.equal(state.pinned, "set_role");
    run(state, "RESET ROLE", ["RESET"]);
    assert.equal(state.pinned, null);
    run(state, "SET ROLE bob", ["SET"]);
    run(state, "SET ROLE NONE", ["SET"]);
    assert.equal(state.pinned, null);
    run(state, "SET SESSION AUTHORIZATION bob", ["SET"]);
    assert.equal(state.pinned, "set_role");
    run(state, "RESET SESSION AUTHORIZATION", ["RESET"]);
    assert.equal(state.pinned, null);
    run(state, "BEGIN; SET ROLE bob; ROLLBACK", ["BEGIN", "SET", "ROLLBACK"]);
    assert.equal(state.pinned, null);
  });

  it("a session_authorization ParameterStatus that differs from login pins set_role (a function may change it)", () => {
    const state = new SessionState({ parameters: [["session_authorization", "alice"]] });
    state.parameterStatus("session_authorization", "bob");
    assert.equal(state.pinned, "set_role");
    state.parameterStatus("session_authorization", "alice");
    assert.equal(state.pinned, null);
  });

  it("an is_superuser ParameterStatus that differs from login pins set_role (SET ROLE inside a DO block)", () => {
    const state = new SessionState({
      parameters: [["is_superuser", "on"], ["session_authorization", "postgres"]],
    });
    run(state, "DO $$ BEGIN SET ROLE app; END $$", ["DO"]);
    state.parameterStatus("is_superuser", "off");
    assert.equal(state.pinned, "set_role");
    state.parameterStatus("is_superuser", "on");
    assert.equal(state.pinned, null);
  });

  it("LOAD pins for good; DISCARD ALL does not unload", () => {
    const { state } = tracked();
    run(state, "LOAD 'auto_explain'", ["LOAD"]);
    run(state, "DISCARD ALL", ["DISCARD ALL"]);
    assert.equal(state.pinned, "load");
  });

  it("pinned is the first reason still held; events count each start", () => {
    const { state, events } = tracked();
    run(state, "PREPARE p AS SELECT 1", ["PREPARE"]);
    run(state, "LISTEN x", ["LISTEN"]);
    assert.equal(state.pinned, "sql_prepare");
    assert.deepEqual(state.pinReasons, ["listen", "sql_prepare"]);
    run(state, "DEALLOCATE p", ["DEALLOCATE"]);
    assert.equal(state.pinned, "listen");
    run(state, "DISCARD ALL", ["DISCARD ALL"]);
    assert.equal(state.pinned, null);
    assert.deepEqual(events, [["sql_prepare", true], ["listen", true], ["sql_prepare", false], [
      "listen",
      false,
    ]]);
  });
});

describe("SessionState.replayFor()", () => {
  it("is empty when nothing differs", () => {
    assert.equal(new SessionState().replayFor(empty), "");
  });

  it("sets the unreported settings the server lacks or has otherwise, resets the ones it has extra", () => {
    const client = new SessionState();
    run(client, `SET search_path = "My Schema", public; SET statement_timeout = '5s'; SET a.b = 'it''s'`, [
      "SET",
      "SET",
      "SET",
    ]);
    const server: SettingsView = {
      reported: new Map(),
      settings: new Map([["statement_timeout", "1s"], ["work_mem", "64MB"], ["a.b", "it's"]]),
    };
    assert.equal(
      client.replayFor(server),
      `SET search_path = 'My Schema', 'public'; SET statement_timeout = '5s'; RESET work_mem`,
    );
  });

  it("sets the reported settings a client may set when the server's value differs, never the read-only ones", () => {
    const client = new SessionState({
      parameters: [["TimeZone", "Asia/Kolkata"], ["application_name", "o'app"], ["server_version", "15.1"], [
        "is_superuser",
        "off",
      ], ["DateStyle", "ISO, MDY"]],
    });
    const server = new SessionState({
      parameters: [["TimeZone", "UTC"], ["application_name", ""], ["server_version", "15.2"], [
        "is_superuser",
        "on",
      ], [
        "DateStyle",
        "ISO, MDY",
      ]],
    });
    assert.equal(client.replayFor(server), `SET application_name = 'o''app'; SET timezone = 'Asia/Kolkata'`);
  });

  it("values with backslashes use E'' so that standard_conforming_strings does not matter", () => {
    const client = new SessionState();
    run(client, `SET a.path = 'C:\\temp'`, ["SET"]);
    assert.equal(client.replayFor(empty), `SET a.path = E'C:\\\\temp'`);
  });

  it("list text SET would not store the same way is replayed exactly with set_config", () => {
    const client = new SessionState({ startup: [["search_path", "a,B"]] });
    assert.equal(client.replayFor(empty), `SELECT pg_catalog.set_config('search_path', 'a,B', false)`);
    run(client, "SELECT set_config('search_path', '', false)", ["SELECT 1"]);
    assert.equal(client.replayFor(empty), `SELECT pg_catalog.set_config('search_path', '', false)`);
  });

  it("quotes setting names that need it", () => {
    const client = new SessionState();
    run(client, `SET "My"."select" = 1`, ["SET"]);
    assert.equal(client.replayFor(empty), `SET "My"."select" = '1'`);
  });

  it("a server SessionState that ran the replay matches the client afterwards", () => {
    const client = new SessionState();
    run(client, `SET search_path = "a""b", c; SET work_mem = '1MB'`, ["SET", "SET"]);
    const server = new SessionState();
    run(server, "SET lock_timeout = '1s'", ["SET"]);
    const replay = client.replayFor(server);
    assert.equal(replay, `SET search_path = 'a"b', 'c'; SET work_mem = '1MB'; RESET lock_timeout`);
    run(server, replay, ["SET", "SET", "RESET"]);
    assert.deepEqual(Object.fromEntries(server.settings), Object.fromEntries(client.settings));
    assert.equal(client.replayFor(server), "");
  });
});
