/**
 * auth.mode scram: pgrelay authenticates clients itself against an auth file of SCRAM verifiers (with
 * SCRAM-SHA-256-PLUS bound to its own certificate), then logs in upstream with the recovered ClientKey,
 * here with TLS on both legs, the combination relayed SCRAM cannot serve with channel binding.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { parseUserlist } from "../../src/auth/userlist.ts";
import type { LogFields, Logger } from "../../src/core/logger.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import { runPsql } from "../support/clients.ts";
import { freePort } from "../support/free_port.ts";
import { runPgrelay, startTestProxy } from "../support/pgrelay.ts";
import { startPostgres, type TlsPostgresCluster } from "../support/postgres.ts";

/** A logger that keeps every line, for asserting what the operator is told. */
function recordingLogger(): Logger & { lines: Array<LogFields & { event: string; level: string }> } {
  const lines: Array<LogFields & { event: string; level: string }> = [];
  return { lines, log: (level, event, fields = {}) => lines.push({ ...fields, event, level }) };
}

describe("auth.mode scram", () => {
  let cluster: TlsPostgresCluster;
  let proxy: Proxy;
  let dir = "";
  let authFile = "";
  const logger = recordingLogger();

  const psql = (user: string, password: string, env: Record<string, string>, sql = "select current_user || ' ' || (select ssl from pg_stat_ssl where pid = pg_backend_pid())") =>
    runPsql(["-A", "-t", "-c", sql], {
      host: "localhost", port: proxy.address.port, user, password, database: "postgres",
      env: { PGSSLROOTCERT: cluster.pki.ca.certPath, ...env },
    });

  before(async () => {
    cluster = await startPostgres({ ssl: true });
    dir = await mkdtemp(join(tmpdir(), "pgrelay-scram-"));
    const verifiers = await runPsql(["-A", "-t", "-F", " ", "-c", "select '\"' || rolname || '\" \"' || rolpassword || '\"' from pg_authid where rolname in ('scram_user', 'md5_user')"], {
      host: cluster.host, port: cluster.port, ...cluster.users.superuser, database: "postgres",
    });
    assert.equal(verifiers.code, 0, verifiers.stderr);
    authFile = join(dir, "userlist.txt");
    await writeFile(authFile, `; pgrelay test users\n${verifiers.stdout}`, { mode: 0o600 });
    const users = parseUserlist(verifiers.stdout);
    const pem = (text: string) => new TextEncoder().encode(text);
    proxy = await startTestProxy(cluster, {
      clientEncryption: { mode: "terminate", require: false, server: { cert: pem(cluster.pki.proxy.certPem), key: pem(cluster.pki.proxy.keyPem) } },
      upstreamEncryption: { mode: "verify-full", client: { verify: "full", ca: pem(cluster.pki.ca.certPem), serverName: "localhost" } },
      authentication: { mode: "scram", users },
      logger,
    });
  });
  after(async () => {
    await proxy?.close();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("TLS on both legs with channel_binding=require: pgrelay binds to its own certificate and logs in upstream", async () => {
    const { user, password } = cluster.users.scram;
    const result = await psql(user, password, { PGSSLMODE: "verify-full", PGCHANNELBINDING: "require" });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "scram_user true", "logged in as the user, over TLS to the server");
  });

  it("the libpq default (channel_binding=prefer) works too, and so does a plaintext client", async () => {
    const { user, password } = cluster.users.scram;
    assert.equal((await psql(user, password, { PGSSLMODE: "verify-full" })).stdout.trim(), "scram_user true");
    assert.equal((await psql(user, password, { PGSSLMODE: "disable" })).stdout.trim(), "scram_user true");
  });

  it("a wrong password gets 28P01 from pgrelay and never reaches the server", async () => {
    const result = await psql(cluster.users.scram.user, "wrong", { PGSSLMODE: "require" });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /FATAL:  password authentication failed for user "scram_user"/);
    assert.doesNotMatch(cluster.logTail(50), /password authentication failed for user "scram_user"/, "the server saw no attempt");
  });

  it("an unknown user and an md5 user see what a wrong password gets; the log says why", async () => {
    const env = { PGSSLMODE: "require", PGCHANNELBINDING: "require" }; // the mock offers -PLUS as the real path does
    const wrong = await psql(cluster.users.scram.user, "wrong", env);
    assert.match(wrong.stderr, /FATAL:  password authentication failed for user "scram_user"\n$/);
    const unknown = await psql("nobody", "x", env);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, wrong.stderr.replaceAll('"scram_user"', '"nobody"'), "psql cannot tell them apart");
    const md5 = await psql(cluster.users.md5.user, cluster.users.md5.password, env);
    assert.equal(md5.stderr, wrong.stderr.replaceAll('"scram_user"', '"md5_user"'));

    const pgError = async (user: string, password: string) => {
      const client = new pg.Client({ host: "127.0.0.1", port: proxy.address.port, user, password, database: "postgres" });
      client.on("error", () => {});
      const error = await client.connect().then(() => undefined, (e: pg.DatabaseError) => e);
      await client.end().catch(() => {});
      assert.ok(error, `${user} must not log in`);
      return { code: error.code, severity: error.severity, message: error.message, hint: error.hint, detail: error.detail };
    };
    const wrongPg = await pgError(cluster.users.scram.user, "wrong");
    const unknownPg = await pgError("nobody", "x");
    assert.equal(unknownPg.code, "28P01");
    assert.deepEqual(unknownPg, { ...wrongPg, message: 'password authentication failed for user "nobody"' });

    const failed = (user: string) => logger.lines.filter((l) => l.event === "auth_failed" && l.user === user);
    assert.equal(failed("nobody").length, 2, "psql and pg");
    for (const line of failed("nobody")) {
      assert.equal(line.level, "warn");
      assert.equal(line.message, 'pgrelay has no SCRAM verifier for user "nobody"');
      assert.match(String(line.hint), /^List the user's SCRAM verifier \(pg_authid\.rolpassword\) in pgrelay's auth\.file/);
      assert.equal(line.client_sqlstate, "28P01");
    }
    assert.match(String(failed("md5_user")[0]?.message), /^user "md5_user" has an md5 password in pgrelay's auth file/);
    assert.equal(failed("scram_user").at(-1)?.message, 'password authentication failed for user "scram_user"');
    assert.equal(failed("scram_user").at(-1)?.mock_exchange, undefined, "a real exchange is not marked as a mock");
  });

  it("auth.query fetches the verifier of a user the file does not list, as auth.user", async () => {
    const pem = (text: string) => new TextEncoder().encode(text);
    const queryLogger = recordingLogger();
    const start = (password: string) =>
      startTestProxy(cluster, {
        logger: queryLogger,
        upstreamEncryption: { mode: "verify-full", client: { verify: "full", ca: pem(cluster.pki.ca.certPem), serverName: "localhost" } },
        authentication: {
          mode: "scram",
          users: new Map(),
          query: { query: "select rolpassword from pg_authid where rolname = $1", user: "postgres", password, database: "postgres" },
        },
      });
    const viaQuery = await start(cluster.users.superuser.password);
    const wrongAuthUser = await start("not-the-password");
    try {
      const login = (port: number, user: string, password: string) =>
        runPsql(["-A", "-t", "-c", "select current_user"], { host: "127.0.0.1", port, user, password, database: "postgres", env: { PGSSLMODE: "disable" } });
      const ok = await login(viaQuery.address.port, cluster.users.scram.user, cluster.users.scram.password);
      assert.equal(ok.stdout.trim(), "scram_user", ok.stderr);
      const wrong = await login(viaQuery.address.port, cluster.users.scram.user, "wrong");
      assert.match(wrong.stderr, /FATAL:  password authentication failed for user "scram_user"/);
      const md5 = await login(viaQuery.address.port, cluster.users.md5.user, cluster.users.md5.password);
      assert.match(md5.stderr, /FATAL:  password authentication failed for user "md5_user"\n$/);
      const unknown = await login(viaQuery.address.port, "nobody", "x");
      assert.match(unknown.stderr, /FATAL:  password authentication failed for user "nobody"\n$/);
      const reasons = queryLogger.lines.filter((l) => l.event === "auth_failed").map((l) => l.message);
      assert.ok(reasons.includes(`user "md5_user" has an md5 password in pgrelay's auth file; auth.mode scram needs a SCRAM-SHA-256 verifier`), reasons.join("\n"));
      assert.ok(reasons.includes('pgrelay has no SCRAM verifier for user "nobody"'), reasons.join("\n"));
      const broken = await login(wrongAuthUser.address.port, cluster.users.scram.user, cluster.users.scram.password);
      // The client learns neither auth.user's name nor the server's error, nor that the file lacks the user.
      assert.match(broken.stderr, /FATAL:  password authentication failed for user "scram_user"\n$/);
      const cause = queryLogger.lines.find((l) => l.event === "auth_query_failed");
      assert.equal(cause?.level, "warn");
      assert.equal(cause?.auth_user, "postgres");
      assert.match(String(cause?.error), /auth\.user "postgres" could not log in: 28P01/);
      assert.ok(queryLogger.lines.some((l) => l.event === "auth_failed" && l.session === cause?.session), "logged under one session id");
    } finally {
      await viaQuery.close();
      await wrongAuthUser.close();
    }
  });

  it("auth.query with the server down: a listed and an unlisted user get the same answer to a wrong password", async () => {
    const listed = await runPsql(["-A", "-t", "-c", "select '\"scram_user\" \"' || rolpassword || '\"' from pg_authid where rolname = 'scram_user'"], {
      host: cluster.host, port: cluster.port, ...cluster.users.superuser, database: "postgres",
    });
    const downLogger = recordingLogger();
    const down = await startTestProxy({ host: "127.0.0.1", port: await freePort() }, {
      logger: downLogger,
      authentication: {
        mode: "scram",
        users: parseUserlist(listed.stdout),
        query: { query: "select rolpassword from pg_authid where rolname = $1", user: "postgres", password: "x", database: "postgres" },
      },
    });
    try {
      const login = (user: string, password: string) =>
        runPsql(["-c", "select 1"], { host: "127.0.0.1", port: down.address.port, user, password, database: "postgres", env: { PGSSLMODE: "disable" } });
      const known = await login(cluster.users.scram.user, "wrong");
      const unknown = await login("nobody", "wrong");
      assert.match(known.stderr, /FATAL:  password authentication failed for user "scram_user"\n$/);
      assert.equal(unknown.stderr, known.stderr.replaceAll('"scram_user"', '"nobody"'));
      const right = await login(cluster.users.scram.user, cluster.users.scram.password);
      assert.match(right.stderr, /FATAL:  pgrelay could not connect to the database server \(session [0-9a-f]{6}-\d+\)/);
      const cause = downLogger.lines.find((l) => l.event === "auth_query_failed" && l.user === "nobody");
      assert.match(String(cause?.error), /^pgrelay could not connect to upstream 127\.0\.0\.1:\d+: /);
    } finally {
      await down.close();
    }
  });

  it("--check reads the auth file and names a bad line", async () => {
    const ok = await runPgrelay(["--check", "--auth-mode", "scram", "--auth-file", authFile]);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = join(dir, "bad.txt");
    await writeFile(bad, '"scram_user" "SCRAM-SHA-256$4096:broken"\n', { mode: 0o600 });
    const result = await runPgrelay(["--check", "--auth-mode", "scram", "--auth-file", bad]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^pgrelay: auth\.file: ".*bad\.txt": auth file line 1: /);
    const missing = await runPgrelay(["--check", "--auth-mode", "scram"]);
    assert.match(missing.stderr, /auth: mode scram needs file/);
    const config = join(dir, "query.yaml");
    await writeFile(config, `auth: { mode: scram, file: ${authFile}, query: "select 1", user: scram_user }\n`);
    const notPlain = await runPgrelay(["--check", "--config", config]);
    assert.match(notPlain.stderr, /auth\.user: "scram_user" needs a plaintext password in auth.file to run auth.query/);
  });
});
