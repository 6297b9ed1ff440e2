/**
 * TLS on both legs with real PostgreSQL (ssl=on), psql, npm pg and node:tls clients: every cell of the
 * client TLS x pgrelay mode x upstream TLS x channel_binding matrix, upstream verification failures,
 * direct TLS, buffer stuffing, a large COPY through TLS on both legs, and certificate reload.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { Proxy } from "../../src/core/proxy.ts";
import { parsePolicy } from "../../src/policy/policy_schema.ts";
import type { ClientTlsSettings, UpstreamTlsSettings } from "../../src/core/tls_settings.ts";
import { runPsql } from "../support/clients.ts";
import type { TestPki } from "../support/certs.ts";
import { spawnPgrelay, startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres, type TlsPostgresCluster } from "../support/postgres.ts";
import { errorFields, frontend, parseBackendFrames, RawClient } from "../support/raw_client.ts";
import { directTls, readAll, tlsAfterSslRequest } from "../support/tls_client.ts";

const SERVER_SSL = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
const endsWithReady = (bytes: Uint8Array) => bytes.length >= 6 && bytes[bytes.length - 6] === 0x5a;

describe("TLS", () => {
  let tlsCluster: TlsPostgresCluster;
  let plainCluster: PostgresCluster;
  let pki: TestPki;
  let dir = "";
  const proxies: Proxy[] = [];
  const ports: Record<string, number> = {};
  /** The upstream_failed log lines: a client's 08001 names only its session id, the log says why. */
  const upstreamFailures: Array<Record<string, unknown>> = [];
  const logger = {
    log: (_level: string, event: string, fields: Record<string, unknown> = {}) => {
      if (event === "upstream_failed") upstreamFailures.push(fields);
    },
  };
  const causeFor = (stderr: string) => {
    const session = /FATAL:  pgrelay could not connect to the database server \(session ([0-9a-f]{6}-\d+)\)/.exec(stderr)?.[1];
    assert.ok(session, stderr);
    return String(upstreamFailures.find((line) => line.session === session)?.error);
  };

  const terminate = (require = false): ClientTlsSettings => ({
    mode: "terminate",
    require,
    server: { cert: new TextEncoder().encode(pki.proxy.certPem), key: new TextEncoder().encode(pki.proxy.keyPem) },
  });
  const upstream = (mode: UpstreamTlsSettings["mode"], ca = pki.ca.certPem, serverName = "localhost"): UpstreamTlsSettings => ({
    mode,
    client: { verify: mode === "verify-full" ? "full" : mode === "verify-ca" ? "ca" : "none", ca: new TextEncoder().encode(ca), serverName },
  });

  before(async () => {
    tlsCluster = await startPostgres({ ssl: true });
    plainCluster = await startPostgres();
    pki = tlsCluster.pki;
    dir = await mkdtemp(join(tmpdir(), "pgrelay-tls-"));
    const start = async (name: string, cluster: PostgresCluster, options: Parameters<typeof startTestProxy>[1]) => {
      const proxy = await startTestProxy(cluster, options);
      proxies.push(proxy);
      ports[name] = proxy.address.port;
    };
    await start("disable", tlsCluster, {});
    await start("terminate", tlsCluster, { clientEncryption: terminate() });
    await start("terminate+tls", tlsCluster, { clientEncryption: terminate(), upstreamEncryption: upstream("verify-full") });
    await start("passthrough", tlsCluster, { clientEncryption: { mode: "passthrough", require: false, server: undefined } });
    await start("require", tlsCluster, { clientEncryption: terminate(true) });
    await start("upstream-no-tls", plainCluster, { upstreamEncryption: upstream("require"), logger });
    await start("upstream-wrong-ca", tlsCluster, { upstreamEncryption: upstream("verify-full", pki.otherCa.certPem), logger });
    await start("upstream-wrong-name", tlsCluster, { upstreamEncryption: upstream("verify-full", pki.ca.certPem, "db.example"), logger });
    await start("upstream-prefer-plain", plainCluster, { upstreamEncryption: upstream("prefer") });
  });
  after(async () => {
    for (const proxy of proxies) await proxy.close();
    await tlsCluster?.stop();
    await plainCluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const psql = (proxy: string, env: Record<string, string>, sql = SERVER_SSL) =>
    runPsql(["-A", "-t", "-c", sql], {
      host: "localhost",
      port: ports[proxy]!,
      ...tlsCluster.users.scram,
      database: "postgres",
      env: { PGSSLROOTCERT: pki.ca.certPath, ...env },
    });

  // [pgrelay setup, client sslmode, channel_binding, expected: "ok" with the server-side ssl flag, or an error]
  const matrix: Array<[string, string, string, { ok: "t" | "f" } | RegExp]> = [
    ["disable", "disable", "prefer", { ok: "f" }],
    ["disable", "prefer", "prefer", { ok: "f" }],
    ["disable", "require", "prefer", /server does not support SSL, but SSL was required/],
    ["disable", "prefer", "require", /channel binding required, but SSL not in use/],
    ["terminate", "disable", "prefer", { ok: "f" }],
    ["terminate", "verify-full", "prefer", { ok: "f" }],
    ["terminate", "verify-full", "disable", { ok: "f" }],
    ["terminate", "verify-full", "require", /channel binding is required, but server did not offer an authentication method that supports channel binding/],
    ["terminate+tls", "disable", "prefer", { ok: "t" }],
    ["terminate+tls", "disable", "require", /channel binding required, but SSL not in use/],
    ["terminate+tls", "verify-full", "disable", { ok: "t" }],
    ["terminate+tls", "verify-full", "prefer", /FATAL:  channel binding cannot work through pgrelay here[^]*HINT:  Connect with channel_binding=disable, or configure pgrelay with tls.mode: passthrough/],
    ["terminate+tls", "verify-full", "require", /FATAL:  channel binding cannot work through pgrelay here/],
    ["passthrough", "disable", "prefer", { ok: "f" }],
    ["passthrough", "verify-full", "prefer", { ok: "t" }],
    ["passthrough", "verify-full", "require", { ok: "t" }],
    ["require", "disable", "prefer", /FATAL:  pgrelay requires TLS: this connection is not encrypted\nHINT:  Connect with sslmode=require/],
    ["require", "require", "prefer", { ok: "f" }],
  ];
  for (const [setup, sslmode, binding, expected] of matrix) {
    it(`matrix: ${setup}, sslmode=${sslmode}, channel_binding=${binding}`, async () => {
      const result = await psql(setup, { PGSSLMODE: sslmode, PGCHANNELBINDING: binding });
      if (expected instanceof RegExp) {
        assert.notEqual(result.code, 0, `expected a failure, got ${result.stdout}`);
        assert.match(result.stderr, expected);
      } else {
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), expected.ok, "the server's view of its own leg");
      }
    });
  }

  it("passthrough: psql verify-full checks the server's certificate, not pgrelay's", async () => {
    // The server's certificate says localhost only; pgrelay's also says pgrelay.test. Asking for
    // pgrelay.test only works when the certificate comes from pgrelay.
    const env = { PGSSLMODE: "verify-full", PGHOSTADDR: "127.0.0.1" };
    const terminated = await runPsql(["-A", "-t", "-c", "select 1"], {
      host: "pgrelay.test", port: ports.terminate!, ...tlsCluster.users.scram, database: "postgres",
      env: { PGSSLROOTCERT: pki.ca.certPath, ...env },
    });
    assert.equal(terminated.stdout.trim(), "1", terminated.stderr);
    const passed = await runPsql(["-A", "-t", "-c", "select 1"], {
      host: "pgrelay.test", port: ports.passthrough!, ...tlsCluster.users.scram, database: "postgres",
      env: { PGSSLROOTCERT: pki.ca.certPath, ...env },
    });
    assert.match(passed.stderr, /server certificate for "localhost" \(and \d+ other names?\) does not match host name "pgrelay\.test"/);
  });

  it("upstream_tls require against a server without TLS: FATAL 08001, the log naming the upstream", async () => {
    const result = await psql("upstream-no-tls", { PGSSLMODE: "disable" }, "select 1");
    assert.match(causeFor(result.stderr), new RegExp(`^pgrelay could not secure the connection to upstream 127\\.0\\.0\\.1:${plainCluster.port}: the server does not accept TLS \\(it answered N to SSLRequest\\) but upstream_tls.mode is require`));
  });

  it("upstream_tls prefer falls back to plaintext when the server has no TLS", async () => {
    const result = await runPsql(["-A", "-t", "-c", "select 'plain upstream'"], {
      host: "127.0.0.1", port: ports["upstream-prefer-plain"]!, ...plainCluster.users.scram, database: "postgres",
    });
    assert.equal(result.stdout.trim(), "plain upstream", result.stderr);
  });

  it("upstream verify-full with the wrong CA or the wrong name: FATAL 08001, the log saying why", async () => {
    const wrongCa = await psql("upstream-wrong-ca", { PGSSLMODE: "disable" }, "select 1");
    assert.match(causeFor(wrongCa.stderr), /^pgrelay could not secure the connection to upstream .*: TLS handshake failed: .*(certificate|issuer)/i);
    const wrongName = await psql("upstream-wrong-name", { PGSSLMODE: "disable" }, "select 1");
    assert.match(causeFor(wrongName.stderr), /^pgrelay could not secure the connection to upstream .*: TLS handshake failed: .*db\.example/);
  });

  it("a policy rule on tls allows encrypted clients (terminated or passthrough) and denies plaintext ones", async () => {
    const policy = parsePolicy({ default: "deny", rules: [{ name: "tls-only", allow: { tls: true } }] });
    const terminated = await startTestProxy(tlsCluster, { clientEncryption: terminate(), policy });
    const passthrough = await startTestProxy(tlsCluster, { clientEncryption: { mode: "passthrough", require: false, server: undefined }, policy });
    proxies.push(terminated, passthrough);
    const connect = (port: number, sslmode: string) =>
      runPsql(["-A", "-t", "-c", "select 'in'"], {
        host: "localhost", port, ...tlsCluster.users.scram, database: "postgres",
        env: { PGSSLMODE: sslmode, PGSSLROOTCERT: pki.ca.certPath },
      });
    for (const port of [terminated.address.port, passthrough.address.port]) {
      assert.equal((await connect(port, "verify-full")).stdout.trim(), "in");
      assert.match((await connect(port, "disable")).stderr, /FATAL:  .*denied/);
    }
  });

  it("upstream verify-ca checks the chain but not the name", async () => {
    const proxy = await startTestProxy(tlsCluster, { upstreamEncryption: upstream("verify-ca", pki.ca.certPem, "db.example") });
    proxies.push(proxy);
    const ok = await runPsql(["-A", "-t", "-c", SERVER_SSL], {
      host: "127.0.0.1", port: proxy.address.port, ...tlsCluster.users.scram, database: "postgres", env: { PGSSLMODE: "disable" },
    });
    assert.equal(ok.stdout.trim(), "t", ok.stderr);
  });

  it("an upstream that sends bytes after its S is refused (CVE-2021-23222)", async () => {
    const { createServer } = await import("node:net");
    const fake = createServer((socket) => socket.once("data", () => socket.write("Sgarbage")));
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const fakePort = (fake.address() as { port: number }).port;
    const proxy = await startTestProxy({ host: "127.0.0.1", port: fakePort }, { upstreamEncryption: upstream("require"), logger });
    proxies.push(proxy);
    try {
      const result = await runPsql(["-c", "select 1"], { host: "127.0.0.1", port: proxy.address.port, user: "x", env: { PGSSLMODE: "disable" } });
      assert.match(causeFor(result.stderr), /^pgrelay could not secure the connection to upstream .*: the server sent 8 bytes in answer to SSLRequest, expected 1 \(refusing data before the TLS handshake\)/);
    } finally {
      fake.close();
    }
  });

  it("npm pg with ssl (verify against the CA) through terminate", async () => {
    const client = new pg.Client({
      host: "127.0.0.1", port: ports.terminate, ...tlsCluster.users.scram, database: "postgres",
      ssl: { ca: pki.ca.certPem, servername: "localhost" },
    });
    await client.connect();
    try {
      assert.equal((await client.query("select $1::text as echo", ["through TLS"])).rows[0].echo, "through TLS");
    } finally {
      await client.end();
    }
  });

  it("direct TLS with ALPN postgresql works; without ALPN the client gets FATAL 08P01", async () => {
    const secure = await directTls(ports.terminate!, { ca: pki.ca.certPem, alpn: ["postgresql"] });
    assert.equal(secure.alpnProtocol, "postgresql");
    secure.write(frontend.startupMessage({ user: tlsCluster.users.trust.user, database: "postgres" }));
    const frames = parseBackendFrames(await readAll(secure, endsWithReady));
    assert.ok(frames.some((f) => f.type === "R"));
    assert.equal(frames.at(-1)?.type, "Z");
    secure.destroy();
    const bare = await directTls(ports.terminate!, { ca: pki.ca.certPem });
    const error = parseBackendFrames(await readAll(bare)).find((f) => f.type === "E");
    assert.equal(errorFields(error!.body).C, "08P01");
    assert.match(errorFields(error!.body).M ?? "", /without ALPN/);
  });

  it("bytes sent after SSLRequest before the handshake are refused (CVE-2021-23214)", async () => {
    const client = await RawClient.connect("127.0.0.1", ports.terminate!);
    const stuffed = new Uint8Array([...frontend.sslRequest(), ...frontend.startupMessage({ user: "x" })]);
    client.sendBytes(stuffed);
    const frames = parseBackendFrames(await client.readRawUntilClose());
    assert.equal(errorFields(frames[0]!.body).C, "08P01");
    assert.equal(errorFields(frames[0]!.body).M, "received unencrypted data after SSL request");
  });

  it("a 200 MB COPY through TLS on both legs arrives byte-identical", async () => {
    const sql = "select i, md5(i::text) || repeat('x', 160) from generate_series(1, 1000000) i";
    const viaFile = join(dir, "via.tsv");
    const directFile = join(dir, "direct.tsv");
    const copy = (port: number, file: string, env: Record<string, string>) =>
      runPsql(["-c", `\\copy (${sql}) to '${file}'`], {
        host: "localhost", port, ...tlsCluster.users.scram, database: "postgres", timeoutMs: 120_000,
        env: { PGSSLROOTCERT: pki.ca.certPath, ...env },
      });
    const via = await copy(ports["terminate+tls"]!, viaFile, { PGSSLMODE: "verify-full", PGCHANNELBINDING: "disable" });
    assert.equal(via.code, 0, via.stderr);
    await copy(tlsCluster.port, directFile, { PGSSLMODE: "verify-full" });
    const hash = async (file: string) => createHash("sha256").update(await readFile(file)).digest("hex");
    const size = (await readFile(viaFile)).length;
    assert.ok(size > 190_000_000, `copied ${size} bytes`);
    assert.equal(await hash(viaFile), await hash(directFile));
  });

  it("SIGHUP reloads the certificate for new sessions; a bad file keeps the old one; live sessions stay", async () => {
    const cert = join(dir, "live.crt");
    const key = join(dir, "live.key");
    await copyFile(pki.proxy.certPath, cert);
    await copyFile(pki.proxy.keyPath, key);
    const config = join(dir, "tls.yaml");
    await writeFile(config, `upstream: 127.0.0.1:${tlsCluster.port}\ntls: { mode: terminate, cert: ${cert}, key: ${key} }\n`);
    const proxy = await spawnPgrelay(["--config", config]);
    const subjectCN = async () => {
      const secure = await tlsAfterSslRequest(proxy.address.port, { ca: pki.ca.certPem, servername: "localhost" });
      const cn = secure.getPeerCertificate().subject?.CN;
      secure.destroy();
      return cn;
    };
    const live = new pg.Client({
      host: "127.0.0.1", port: proxy.address.port, ...tlsCluster.users.scram, database: "postgres",
      ssl: { ca: pki.ca.certPem, servername: "localhost" },
    });
    await live.connect();
    try {
      assert.equal(await subjectCN(), "pgrelay.test");
      await copyFile(pki.server.certPath, cert);
      await copyFile(pki.server.keyPath, key);
      process.kill(proxy.pid, "SIGHUP");
      for (let i = 0; i < 50 && !proxy.stderr().includes("config_reloaded"); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await subjectCN(), "localhost", "new sessions get the new certificate");
      await writeFile(key, "not a key\n");
      process.kill(proxy.pid, "SIGHUP");
      for (let i = 0; i < 50 && !proxy.stderr().includes("config_reload_failed"); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(proxy.stderr(), /"event":"config_reload_failed","error":"tls.key: .*live\.key\\" is not a PEM private key/);
      assert.equal(await subjectCN(), "localhost", "the previous certificate stays");
      assert.equal((await live.query("select 'still here' as w")).rows[0].w, "still here");
    } finally {
      await live.end();
      await proxy.stop();
    }
  });
});
