/** Self-test of the integration rig: cluster lifecycle, psql and RawClient authentication. */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runPsql } from "./clients.ts";
import {
  type PgCredentials,
  type PostgresCluster,
  startPostgres,
  type TlsPostgresCluster,
} from "./postgres.ts";
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
    assert.equal(pg.ssl, false);
    assert.equal(pg.pki, undefined);
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

describe("test rig: startPostgres({ ssl: true })", () => {
  let pg: TlsPostgresCluster;

  before(async () => {
    pg = await startPostgres({
      ssl: true,
      hba: ["hostnossl all md5_user 127.0.0.1/32 reject"],
      conf: { ssl_min_protocol_version: "TLSv1.3" },
    });
  });

  after(async () => {
    await pg?.stop();
  });

  /** psql -At -c `sql` as `kind` with extra libpq environment; `sslmode=disable` by default. */
  function psql(kind: "scram" | "md5" | "superuser", sql: string, env: Record<string, string>) {
    const { user, password } = pg.users[kind];
    return runPsql(["-At", "-c", sql], {
      host: pg.host,
      port: pg.port,
      user,
      password,
      env: { PGSSLMODE: "disable", ...env },
    });
  }

  const SSL_IN_USE = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";

  it("exposes ssl and the PKI; the key in the data dir is 0600", () => {
    assert.equal(pg.ssl, true);
    assert.ok(existsSync(pg.pki.ca.certPath));
    assert.equal(statSync(join(pg.dataDir, "server.key")).mode & 0o777, 0o600);
  });

  it("psql sslmode=verify-full with the CA connects over TLS as scram_user", async () => {
    const res = await psql("scram", SSL_IN_USE, {
      PGSSLMODE: "verify-full",
      PGSSLROOTCERT: pg.pki.ca.certPath,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), "t");
  });

  it("psql sslmode=verify-full with the other CA fails certificate verification", async () => {
    const res = await psql("scram", "select 1", {
      PGSSLMODE: "verify-full",
      PGSSLROOTCERT: pg.pki.otherCa.certPath,
    });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /certificate verify failed/);
  });

  it("channel_binding=require succeeds over TLS (the server offers SCRAM-SHA-256-PLUS)", async () => {
    const res = await psql("scram", "select current_user", {
      PGSSLMODE: "verify-full",
      PGSSLROOTCERT: pg.pki.ca.certPath,
      PGCHANNELBINDING: "require",
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), "scram_user");
  });

  it("channel_binding=require without TLS is refused by libpq", async () => {
    const res = await psql("scram", "select 1", { PGCHANNELBINDING: "require" });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /channel binding/i);
  });

  it("plaintext still works on the same port for default host lines", async () => {
    const res = await psql("scram", SSL_IN_USE, {});
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), "f");
  });

  it("opts.hba lines come first: hostnossl reject for md5_user", async () => {
    const plain = await psql("md5", "select 1", {});
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /pg_hba\.conf rejects connection .*"md5_user".*no encryption/);
    const tls = await psql("md5", SSL_IN_USE, { PGSSLMODE: "require" });
    assert.equal(tls.code, 0, tls.stderr);
    assert.equal(tls.stdout.trim(), "t");
  });

  it("opts.conf settings are applied (ssl_min_protocol_version = TLSv1.3)", async () => {
    const show = await psql("superuser", "show ssl_min_protocol_version", { PGSSLMODE: "require" });
    assert.equal(show.code, 0, show.stderr);
    assert.equal(show.stdout.trim(), "TLSv1.3");
    const tls12 = await psql("scram", "select 1", {
      PGSSLMODE: "require",
      PGSSLMAXPROTOCOLVERSION: "TLSv1.2",
    });
    assert.notEqual(tls12.code, 0);
    assert.match(tls12.stderr, /protocol version|unsupported protocol/i);
  });
});
