/**
 * SessionState against a real PostgreSQL 15 (and 18, which reports search_path in ParameterStatus): fed the real server's replies, it tracks what the server
 * really did, and the replay SQL it generates is accepted by another connection and leaves the same SHOW
 * values there.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import {
  type BackendMessage,
  dataRowValues,
  errorFields,
  frontend,
  parameterStatus,
  RawClient,
} from "../support/raw_client.ts";
import { trackClientMessage, trackServerMessage } from "../../src/pool/session_frames.ts";
import { SessionState } from "../../src/pool/session_state.ts";
import { pinReasonOf } from "../../src/pool/session_commands.ts";

/** A connection and the SessionState that watches it. */
interface Tracked {
  client: RawClient;
  state: SessionState;
}

/** Feeds the server's replies to `state` as the relay would: whole messages, type byte and body. */
function feed(state: SessionState, messages: readonly BackendMessage[]): void {
  for (const m of messages) trackServerMessage(state, m.type.charCodeAt(0), m.body);
}

/** Sends client frames to the server and feeds them to the tracker (type byte, body after the length). */
function send({ client, state }: Tracked, ...frames: Uint8Array[]): void {
  for (const frame of frames) {
    trackClientMessage(state, frame[0]!, frame.subarray(5));
    client.sendBytes(frame);
  }
}

/** A simple Query through the tracker; returns the error message if one came. */
async function exec(tracked: Tracked, sql: string): Promise<string | undefined> {
  send(tracked, frontend.query(sql));
  const messages = await tracked.client.readUntilReady();
  feed(tracked.state, messages);
  const error = messages.find((m) => m.type === "E");
  return error === undefined ? undefined : errorFields(error.body)["M"];
}

async function execOk(tracked: Tracked, sql: string): Promise<void> {
  const error = await exec(tracked, sql);
  assert.equal(error, undefined, `${sql} failed: ${error}`);
}

/** Parse/Bind/Execute/Sync of one statement through the tracker. */
async function execExtended(tracked: Tracked, sql: string): Promise<void> {
  send(tracked, frontend.parse("", sql), frontend.bind("", "", []), frontend.execute(""), frontend.sync());
  feed(tracked.state, await tracked.client.readUntilReady());
}

/** What SHOW says (current_setting, so that an unset custom setting is null rather than an error). */
function show(client: RawClient, name: string): Promise<string | null> {
  return scalar(client, `SELECT current_setting('${name}', true)`);
}

async function scalar(client: RawClient, sql: string): Promise<string | null> {
  client.query(sql);
  const messages = await client.readUntilReady();
  const error = messages.find((m) => m.type === "E");
  if (error) throw new Error(errorFields(error.body)["M"]);
  const row = messages.find((m) => m.type === "D");
  return row === undefined ? null : dataRowValues(row.body)[0] ?? null;
}

const COMPARED = [
  "TimeZone",
  "DateStyle",
  "IntervalStyle",
  "application_name",
  "search_path",
  "statement_timeout",
  "work_mem",
  "lock_timeout",
  "extra_float_digits",
  "standard_conforming_strings",
  "default_transaction_isolation",
  "my.note",
];

for (const version of [15, 18]) {
  describe(`SessionState with PostgreSQL ${version}: replay reproduces the session`, () => {
    let pg: PostgresCluster;
    const open: RawClient[] = [];

    async function connect(params: Record<string, string> = {}): Promise<Tracked> {
      const client = await RawClient.connect(pg.host, pg.port);
      open.push(client);
      client.startup({ user: pg.users.superuser.user, database: "postgres", ...params });
      const login = await client.authenticate(pg.users.superuser.password);
      const parameters = login.filter((m) => m.type === "S").map((m) => parameterStatus(m.body));
      return { client, state: new SessionState({ parameters }) };
    }

    /** Replays `from` onto `to` and checks the SHOW values agree and nothing is left to replay. */
    async function replayAndCompare(from: Tracked, to: Tracked): Promise<string> {
      const replay = from.state.replayFor(to.state);
      if (replay !== "") await execOk(to, replay);
      for (const name of COMPARED) {
        assert.equal(
          await show(to.client, name),
          await show(from.client, name),
          `SHOW ${name} after: ${replay}`,
        );
      }
      assert.equal(from.state.replayFor(to.state), "", "after the replay, nothing differs");
      return replay;
    }

    before(async () => {
      pg = await startPostgres(version === 18 ? { version: 18 } : {});
      assert.equal(pg.version, version);
      await pg.sql(
        `CREATE SCHEMA "My Schema"; CREATE SCHEMA "it's"; CREATE SCHEMA "a""b"; CREATE SCHEMA "Select"`,
      );
    });

    after(async () => {
      for (const client of open) await client.close();
      await pg?.stop();
    });

    it("odd time zones, quoted schemas, quotes and backslashes in values", async () => {
      const a = await connect({ application_name: "client-a" });
      const b = await connect({ application_name: "pool" });
      await execOk(a, `SET search_path = "My Schema", "it's", "a""b", "Select", public, '$user'`);
      await execOk(a, `SET TIME ZONE INTERVAL '+05:30' HOUR TO MINUTE`);
      await execOk(a, `SET application_name = 'O''Brien \\ app'`);
      await execOk(a, `SET my.note = E'it\\'s a \\\\ back\\\\slash'`);
      await execOk(a, "SET statement_timeout = 4500; SET work_mem TO '3MB'; SET extra_float_digits = -2");
      await execOk(a, "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ");
      await execOk(a, "SET IntervalStyle = iso_8601; SET DateStyle = 'SQL, DMY'");
      await execOk(b, "SET lock_timeout = '2s'");
      const replay = await replayAndCompare(a, b);
      assert.match(replay, /SET timezone = '<\+05:30>-05:30'/);
      assert.match(replay, /RESET lock_timeout/);
      assert.equal(
        await show(b.client, "search_path"),
        `"My Schema", "it's", "a""b", "Select", public, "$user"`,
      );
      assert.equal(await show(b.client, "my.note"), "it's a \\ back\\slash");
    });

    for (const zone of ["America/Argentina/Buenos_Aires", "EST5EDT", "<+03>-03", "UTC+3", "-7.5"]) {
      it(`TimeZone ${zone} replays to the same value`, async () => {
        const a = await connect();
        const b = await connect();
        await execOk(a, /^-?[\d.]+$/.test(zone) ? `SET TIME ZONE ${zone}` : `SET TimeZone = '${zone}'`);
        await replayAndCompare(a, b);
      });
    }

    it("a server with standard_conforming_strings off accepts values with backslashes", async () => {
      const a = await connect();
      const b = await connect();
      await execOk(a, `SET my.note = 'C:\\temp\\new'`);
      await execOk(b, "SET standard_conforming_strings = off");
      await replayAndCompare(a, b);
      assert.equal(await show(b.client, "my.note"), "C:\\temp\\new");
    });

    it("tracks only what committed: rolled-back and failed SETs are not replayed", async () => {
      const a = await connect();
      const b = await connect();
      await execOk(
        a,
        "BEGIN; SET work_mem = '5MB'; SAVEPOINT s; SET statement_timeout = 111; ROLLBACK TO s; COMMIT",
      );
      await exec(a, "SET lock_timeout = 222; SELECT 1/0");
      await execOk(a, "BEGIN; SET extra_float_digits = 1");
      await exec(a, "SELECT 1/0");
      await exec(a, "COMMIT");
      await execOk(a, "SET LOCAL search_path = nowhere");
      await execExtended(a, "SET my.note = 'extended'");
      assert.deepEqual(Object.fromEntries(a.state.settings), { work_mem: "5MB", "my.note": "extended" });
      await replayAndCompare(a, b);
    });

    it("statements are matched to their CommandComplete through BEGIN ATOMIC bodies and rule actions", async () => {
      const a = await connect();
      await execOk(
        a,
        "CREATE TEMP TABLE rt (a int) ON COMMIT DROP; " +
          "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; " +
          "CREATE RULE r AS ON INSERT TO rt DO ALSO (SELECT 1; SELECT 2); SET work_mem = '9MB'; LISTEN after_atomic",
      );
      assert.equal(a.state.settings.get("work_mem"), "9MB");
      assert.deepEqual(a.state.pinReasons, ["listen", "temp_table"], "pg_temp.f is a temporary function");
    });

    it("RESET ALL, DISCARD ALL and set_config are followed", async () => {
      const a = await connect();
      const b = await connect();
      await execOk(a, "SET work_mem = '7MB'; RESET ALL");
      await execOk(a, "SELECT pg_catalog.set_config('search_path', '', false)");
      await replayAndCompare(a, b);
      await execOk(a, "SELECT set_config('search_path', '\"My Schema\",public', false)");
      await replayAndCompare(a, b);
      const failed = await exec(a, "SET statement_timeout = 9; DISCARD ALL");
      assert.match(failed ?? "", /cannot run inside a transaction block/);
      assert.equal(a.state.settings.get("statement_timeout"), undefined, "rolled back with the failed Query");
      await execOk(a, "SET statement_timeout = 9");
      await execOk(a, "DISCARD ALL");
      assert.deepEqual(Object.fromEntries(a.state.settings), {});
      await replayAndCompare(a, b);
    });

    it("pins follow what the server really holds", async () => {
      const a = await connect();
      const count = (sql: string) => scalar(a.client, sql);
      await execOk(a, 'LISTEN jobs; LISTEN "Other"');
      assert.equal(a.state.pinned, "listen");
      await execOk(a, "UNLISTEN jobs");
      assert.equal(await count("SELECT count(*) FROM pg_listening_channels()"), "1");
      assert.equal(a.state.pinned, "listen");
      await execOk(a, 'UNLISTEN "Other"');
      assert.equal(await count("SELECT count(*) FROM pg_listening_channels()"), "0");
      assert.equal(a.state.pinned, null);

      await execOk(a, "SELECT pg_advisory_lock(5), pg_advisory_lock(5)");
      await execOk(a, "SELECT pg_advisory_unlock(5)");
      assert.equal(
        await count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"),
        "1",
      );
      assert.equal(a.state.pinned, "advisory_lock");
      await execOk(a, "SELECT pg_advisory_unlock(5)");
      assert.equal(
        await count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"),
        "0",
      );
      assert.equal(a.state.pinned, null);

      await execOk(a, "BEGIN; CREATE TEMP TABLE t (a int); ROLLBACK");
      assert.equal(a.state.pinned, null);
      await execOk(
        a,
        "CREATE TEMP TABLE t (a int); DECLARE c CURSOR WITH HOLD FOR SELECT 1; PREPARE p AS SELECT 1",
      );
      assert.deepEqual(a.state.pinReasons, ["temp_table", "with_hold_cursor", "sql_prepare"]);
      const failed = await exec(a, "LISTEN x; CREATE TEMP TABLE t (a int)");
      assert.match(failed ?? "", /already exists/);
      assert.deepEqual(
        a.state.pinReasons,
        ["temp_table", "with_hold_cursor", "sql_prepare"],
        "the failed LISTEN did not pin",
      );
      await execOk(a, "DISCARD ALL");
      assert.equal(a.state.pinned, null);

      await execOk(a, "SET ROLE scram_user");
      assert.equal(a.state.pinned, "set_role");
      await execOk(a, "RESET ROLE");
      assert.equal(a.state.pinned, null);
      await execOk(a, "SET SESSION AUTHORIZATION scram_user");
      assert.equal(a.state.pinned, "set_role");
      await execOk(a, "RESET SESSION AUTHORIZATION");
      assert.equal(a.state.pinned, null);
      await execOk(a, "DO $$ BEGIN SET ROLE scram_user; END $$");
      assert.equal(
        a.state.pinned,
        "set_role",
        "is_superuser went off: the role changed where pgrelay cannot read",
      );
      await execOk(a, "RESET ROLE");
      assert.equal(a.state.pinned, null);
    });

    it("pinReasonOf() flags the statements whose state the server then shows", async () => {
      const a = await connect();
      const sql = "SELECT pg_try_advisory_lock(77)";
      assert.equal(pinReasonOf(sql), "advisory_lock");
      await execOk(a, sql);
      assert.equal(
        await scalar(
          a.client,
          "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        ),
        "1",
      );
    });
  });
}
