/** Authentication methods, server errors and upstream failures as a client sees them through pgrelay. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Proxy } from "../../src/core/proxy.ts";
import { runPsql } from "../support/clients.ts";
import { freePort } from "../support/free_port.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { errorFields, parseBackendFrames, RawClient } from "../support/raw_client.ts";
import { frontend } from "../support/raw_client.ts";

describe("handshake through pgrelay", () => {
  let cluster: PostgresCluster;
  let proxy: Proxy;
  const at = (port: number, user: string, password: string, database = "postgres") => ({
    host: "127.0.0.1",
    port,
    user,
    password,
    database,
  });

  before(async () => {
    cluster = await startPostgres();
    proxy = await startTestProxy(cluster);
  });
  after(async () => {
    await proxy?.close();
    await cluster?.stop();
  });

  for (const method of ["scram", "md5", "plain", "trust"] as const) {
    it(`relays ${method} authentication`, async () => {
      const { user, password } = cluster.users[method];
      const result = await runPsql(["-A", "-t", "-c", "select current_user"], at(proxy.address.port, user, password));
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), user);
    });
  }

  it("a wrong password gets the server's own 28P01 error, byte for byte", async () => {
    const { user } = cluster.users.scram;
    const record = async (port: number) => {
      const client = await RawClient.connect("127.0.0.1", port);
      client.startup({ user, database: "postgres" });
      await client.authenticate("wrong").catch(() => undefined);
      return parseBackendFrames(await client.readRawUntilClose().then(() => client.received))
        .filter((frame) => frame.type === "E");
    };
    const [direct] = await record(cluster.port);
    const [relayed] = await record(proxy.address.port);
    assert.ok(direct && relayed);
    assert.equal(errorFields(relayed.body).C, "28P01");
    assert.deepEqual([...relayed.body], [...direct.body]);
  });

  it("psql sees the same wrong-password and unknown-database errors as direct", async () => {
    const { user, password } = cluster.users.md5;
    for (const [pw, db, code] of [["nope", "postgres", /password authentication failed/], [password, "missing_db", /database "missing_db" does not exist/]] as const) {
      const through = await runPsql(["-c", "select 1"], at(proxy.address.port, user, pw, db));
      const straight = await runPsql(["-c", "select 1"], at(cluster.port, user, pw, db));
      assert.equal(through.code, 2);
      assert.match(through.stderr, code);
      assert.equal(
        through.stderr.replace(/127\.0\.0\.1", port \d+/, "<addr>"),
        straight.stderr.replace(/127\.0\.0\.1", port \d+/, "<addr>"),
      );
    }
  });

  it("answers SSLRequest and GSSENCRequest with N, then relays the startup", async () => {
    const client = await RawClient.connect("127.0.0.1", proxy.address.port);
    client.sendBytes(frontend.gssEncRequest());
    assert.deepEqual([...await client.readBytes(1)], ["N".charCodeAt(0)]);
    client.sendBytes(frontend.sslRequest());
    assert.deepEqual([...await client.readBytes(1)], ["N".charCodeAt(0)]);
    client.startup({ user: cluster.users.trust.user, database: "postgres" });
    await client.authenticate("");
    client.query("select 42");
    const messages = await client.readUntilReady();
    assert.ok(messages.some((m) => m.type === "D"));
    await client.close();
  });

  it("psql sslmode=prefer falls back to plaintext; sslmode=require gets a clear refusal", async () => {
    const { user, password } = cluster.users.scram;
    const prefer = await runPsql(["-A", "-t", "-c", "select 1"], { ...at(proxy.address.port, user, password), env: { PGSSLMODE: "prefer" } });
    assert.equal(prefer.stdout.trim(), "1", prefer.stderr);
    const require = await runPsql(["-c", "select 1"], { ...at(proxy.address.port, user, password), env: { PGSSLMODE: "require" } });
    assert.equal(require.code, 2);
    assert.match(require.stderr, /server does not support SSL, but SSL was required/);
  });

  it("an unreachable upstream gives FATAL 08001 with a session id; the address and the OS error go only to the log", async () => {
    const deadPort = await freePort();
    const lines: Array<Record<string, unknown>> = [];
    const dead = await startTestProxy({ host: "127.0.0.1", port: deadPort }, {
      logger: { log: (level, event, fields = {}) => lines.push({ ...fields, event, level }) },
    });
    try {
      const result = await runPsql(["-c", "select 1"], at(dead.address.port, "anyone", "x"));
      assert.equal(result.code, 2);
      assert.match(result.stderr, /FATAL:  pgrelay could not connect to the database server \(session [0-9a-f]{6}-\d+\)\nHINT:  The administrator can find the cause in pgrelay's log under this session id\./);
      const client = await RawClient.connect("127.0.0.1", dead.address.port);
      client.startup({ user: "anyone" });
      const raw = await client.readRawUntilClose();
      const [error, ...rest] = parseBackendFrames(raw);
      assert.equal(error?.type, "E");
      assert.deepEqual(rest, []);
      const fields = errorFields(error!.body);
      assert.equal(fields.C, "08001");
      assert.equal(fields.S, "FATAL");
      const session = /\(session ([0-9a-f]{6}-\d+)\)$/.exec(fields.M!)?.[1];
      assert.ok(session, fields.M);
      for (const seen of [new TextDecoder().decode(raw), result.stderr.replace(/connection to server at "127\.0\.0\.1", port \d+ failed: /, "")]) {
        assert.doesNotMatch(seen, new RegExp(`127\\.0\\.0\\.1|${deadPort}|refused|ECONNREFUSED|upstream`), "no address or OS error reaches the client");
      }
      const logged = lines.find((l) => l.event === "upstream_failed" && l.session === session);
      assert.equal(logged?.level, "warn");
      assert.match(String(logged?.error), new RegExp(`127\\.0\\.0\\.1:${deadPort}: connection refused \\(ECONNREFUSED\\)`));
    } finally {
      await dead.close();
    }
  });

  it("a server restart mid-session ends that session with the server's error; new sessions work", async () => {
    const { user, password } = cluster.users.scram;
    const client = await RawClient.connect("127.0.0.1", proxy.address.port);
    client.startup({ user, database: "postgres" });
    await client.authenticate(password);
    await cluster.restart();
    const tail = parseBackendFrames(await client.readRawUntilClose());
    assert.equal(errorFields(tail.find((f) => f.type === "E")!.body).C, "57P01", "admin shutdown relayed");
    const after = await runPsql(["-A", "-t", "-c", "select 'back'"], at(proxy.address.port, user, password));
    assert.equal(after.stdout.trim(), "back", after.stderr);
  });
});
