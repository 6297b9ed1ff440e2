/** Self-test of the integration rig: cluster lifecycle, psql and RawClient authentication. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { runPsql } from "./clients.ts";
import { type PgCredentials, type PostgresCluster, startPostgres } from "./postgres.ts";
import { BackendError, dataRowValues, RawClient } from "./raw_client.ts";

describe("test rig: startPostgres", () => {
  let pg: PostgresCluster;

  before(async () => {
    pg = await startPostgres();
  });

  after(async () => {
    await pg?.stop();
  });

  /** Connects, authenticates and runs `select 1`, returning the first DataRow's values. */
  async function rawSelectOne(creds: PgCredentials): Promise<(string | null)[]> {
    const client = await RawClient.connect(pg.host, pg.port);
    try {
      client.startup({ user: creds.user, database: "postgres" });
      await client.authenticate(creds.password);
      client.query("select 1");
      const messages = await client.readUntilReady();
      const row = messages.find((m) => m.type === "D");
      assert.ok(row, `no DataRow in ${messages.map((m) => m.type).join("")}`);
      client.terminate();
      return dataRowValues(row.body);
    } finally {
      await client.close();
    }
  }

  it("exposes a running server with its metadata", () => {
    assert.equal(pg.host, "127.0.0.1");
    assert.ok(pg.port > 0);
    assert.ok(pg.version >= 13, `version ${pg.version}`);
    assert.ok(existsSync(pg.dataDir));
  });

  for (const kind of ["scram", "md5", "plain"] as const) {
    it(`psql connects over TCP as the ${kind} user`, async () => {
      const { user, password } = pg.users[kind];
      const res = await runPsql(["-At", "-c", "select current_user"], {
        host: pg.host,
        port: pg.port,
        user,
        password,
      });
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout.trim(), user);
    });
  }

  it("psql with a wrong password fails authentication", async () => {
    const res = await runPsql(["-At", "-c", "select 1"], {
      host: pg.host,
      port: pg.port,
      user: pg.users.scram.user,
      password: "wrong-password",
    });
    assert.notEqual(res.code, 0);
    // libpq does not print the SQLSTATE of connection failures; 28P01's message text is this:
    assert.match(res.stderr, /password authentication failed for user "scram_user"/);
  });

  for (const kind of ["scram", "md5", "plain", "trust"] as const) {
    it(`RawClient authenticates as the ${kind} user and runs select 1`, async () => {
      assert.deepEqual(await rawSelectOne(pg.users[kind]), ["1"]);
    });
  }

  it("RawClient with a wrong password gets ErrorResponse 28P01", async () => {
    const client = await RawClient.connect(pg.host, pg.port);
    try {
      client.startup({ user: pg.users.scram.user, database: "postgres" });
      await assert.rejects(client.authenticate("wrong-password"), (err: unknown) => {
        assert.ok(err instanceof BackendError);
        assert.equal(err.fields["C"], "28P01");
        return true;
      });
    } finally {
      await client.close();
    }
  });

  it("stop() removes the temp dir and is idempotent", async () => {
    await pg.stop();
    assert.equal(existsSync(pg.dataDir), false);
    assert.equal(existsSync(pg.socketDir), false);
    await pg.stop();
  });
});
