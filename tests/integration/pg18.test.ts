/**
 * pgrelay in front of PostgreSQL 18 (the npm package's server) with libpq 18 clients: direct TLS passed
 * through to the server (sslnegotiation=direct), direct TLS terminated by pgrelay, TLS on the upstream leg,
 * and protocol 3.2 sessions whose 32-byte cancel keys reach the right backend, relayed and in scram mode.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { parseUserlist } from "../../src/auth/userlist.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import type { ClientTlsSettings } from "../../src/core/tls_settings.ts";
import { clientEnv, runPsql } from "../support/clients.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { startPostgres, type TlsPostgresCluster } from "../support/postgres.ts";
import {
  type BackendMessage,
  dataRowValues,
  errorFields,
  frontend,
  RawClient,
} from "../support/raw_client.ts";
import { waitFor } from "../support/wait.ts";
import { cancelRequest } from "../../src/protocol/frontend_messages.ts";

const PROTOCOL_3_2 = (3 << 16) | 2;
const SERVER_SSL = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
const pem = (text: string) => new TextEncoder().encode(text);


describe("PostgreSQL 18 through pgrelay (libpq 18)", () => {
  let pg: TlsPostgresCluster;
  const proxies: Record<string, Proxy> = {};

  before(async () => {
    pg = await startPostgres({ version: 18, ssl: true });
    const terminate: ClientTlsSettings = {
      mode: "terminate",
      require: false,
      server: { cert: pem(pg.pki.proxy.certPem), key: pem(pg.pki.proxy.keyPem) },
    };
    const verifyFull = {
      mode: "verify-full" as const,
      client: { verify: "full" as const, ca: pem(pg.pki.ca.certPem), serverName: "localhost" },
    };
    const verifiers = await pg.sql(
      `select '"' || rolname || '" "' || rolpassword || '"' from pg_authid where rolname = 'scram_user'`,
    );
    const started = await Promise.all([
      startTestProxy(pg),
      startTestProxy(pg, { clientEncryption: { mode: "passthrough", require: false, server: undefined } }),
      startTestProxy(pg, { clientEncryption: terminate, upstreamEncryption: verifyFull }),
      startTestProxy(pg, { authentication: { mode: "scram", users: parseUserlist(verifiers) } }),
    ]);
    [proxies.relay, proxies.passthrough, proxies.terminate, proxies.scram] = started;
  });

  after(async () => {
    for (const proxy of Object.values(proxies)) await proxy.close();
    await pg?.stop();
  });

  /**
   * psql (Debian's, on libpq 18) through the named proxy as scram_user. `conninfo` goes in the connection
   * string, not the environment: libpq 15 ignores unknown PG* variables but rejects unknown options.
   */
  const psql = (proxy: string, conninfo: string, sql = SERVER_SSL) =>
    runPsql(["-At", "-c", sql, "-d", `dbname=postgres sslrootcert=${pg.pki.ca.certPath} ${conninfo}`], {
      host: "localhost",
      port: proxies[proxy]!.address.port,
      ...pg.users.scram,
      libDir: pg.libDir,
    });

  it("runs PostgreSQL 18 and psql loads libpq 18 (which knows sslnegotiation and max_protocol_version)", async () => {
    assert.equal(pg.version, 18);
    const result = await psql("relay", "sslmode=disable max_protocol_version=3.2", "show server_version");
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^18\./);
    const libpq15 = await runPsql(
      ["-At", "-c", "select 1", "-d", "dbname=postgres max_protocol_version=3.2"],
      {
        host: "localhost",
        port: proxies.relay!.address.port,
        ...pg.users.scram,
      },
    );
    assert.match(
      libpq15.stderr,
      /invalid connection option "max_protocol_version"/,
      "the system libpq is older",
    );
  });

  describe("direct TLS (sslnegotiation=direct)", () => {
    it("passthrough: the ClientHello goes to the server, which ends TLS (verify-full against the server's certificate)", async () => {
      const result = await psql("passthrough", "sslmode=verify-full sslnegotiation=direct");
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), "t", "the server itself sees TLS");
    });

    it("passthrough: channel_binding=require works end to end", async () => {
      const result = await psql(
        "passthrough",
        "sslmode=verify-full sslnegotiation=direct channel_binding=require",
        "select current_user",
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), "scram_user");
    });

    it("terminate: pgrelay ends the client's direct TLS and speaks TLS (after SSLRequest) to the server", async () => {
      // channel_binding=disable: with TLS ended at pgrelay and again upstream, SCRAM-PLUS cannot bind (tls.test.ts).
      const result = await psql(
        "terminate",
        "sslmode=verify-full sslnegotiation=direct channel_binding=disable",
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), "t", "the upstream leg is encrypted too");
    });
  });

  describe("protocol 3.2", () => {
    for (const proxy of ["relay", "scram"]) {
      it(`${proxy}: psql with min_protocol_version=3.2 gets a 3.2 session`, async () => {
        const result = await psql(proxy, "sslmode=disable min_protocol_version=3.2", "select 1");
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), "1");
      });
    }

    /**
     * A 3.2 session through `proxy` (plaintext): the BackendKeyData it was given (`pid`, `key`: pgrelay's
     * own) and the server's backend pid (`backend`).
     */
    async function session32(
      proxy: string,
    ): Promise<{ client: RawClient; pid: number; key: Uint8Array; backend: number }> {
      const client = await RawClient.connect("127.0.0.1", proxies[proxy]!.address.port);
      client.sendBytes(
        frontend.startupMessage({ user: pg.users.scram.user, database: "postgres" }, PROTOCOL_3_2),
      );
      const messages = await client.authenticate(pg.users.scram.password);
      assert.equal(
        messages.find((m) => m.type === "v"),
        undefined,
        "no NegotiateProtocolVersion: the server speaks 3.2",
      );
      const keyData = messages.find((m) => m.type === "K");
      assert.ok(keyData, `no BackendKeyData in ${messages.map((m) => m.type).join("")}`);
      const body = keyData.body;
      client.query("select pg_backend_pid()");
      const row = (await client.readUntilReady()).find((m) => m.type === "D");
      assert.ok(row);
      const backend = Number(dataRowValues(row.body)[0]);
      return {
        client,
        pid: new DataView(body.buffer, body.byteOffset).getInt32(0),
        key: body.slice(4),
        backend,
      };
    }

    /** Sends a CancelRequest through `proxy` and waits for the connection to close, as libpq does. */
    async function cancel(proxy: string, pid: number, key: Uint8Array): Promise<void> {
      const client = await RawClient.connect("127.0.0.1", proxies[proxy]!.address.port);
      client.sendBytes(cancelRequest(pid, key));
      await client.readRawUntilClose();
      await client.close();
    }

    const active = async (pid: number) =>
      await pg.sql(`select count(*) from pg_stat_activity where pid = ${pid} and state = 'active'`) === "1";

    const outcome = (client: RawClient): Promise<string> =>
      client.readUntilReady(30_000).then((messages: BackendMessage[]) => {
        const error = messages.find((m) => m.type === "E");
        return error ? errorFields(error.body)["C"] ?? "?" : "finished";
      });

    for (const proxy of ["relay", "scram"]) {
      it(`${proxy}: pgrelay issues 32-byte cancel keys that reach the right backend, and all 32 bytes count`, async () => {
        const a = await session32(proxy);
        const b = await session32(proxy);
        try {
          assert.equal(a.key.length, 32, "PostgreSQL 18 issues 32-byte keys in protocol 3.2, and so does pgrelay");
          assert.equal(b.key.length, 32);
          assert.notEqual(a.pid, a.backend, "the key is pgrelay's: its pid is not the server's");
          assert.notEqual(b.pid, b.backend);
          const context = proxies[proxy]!.sessions.find((s) => s.backendPid === a.backend);
          assert.equal(context?.backendSecret?.length, 32, "the server's own 32-byte key stays with pgrelay");
          assert.notDeepEqual([...context.backendSecret], [...a.key]);
          assert.notEqual(a.backend, b.backend);
          a.client.query("select pg_sleep(30)");
          b.client.query("select pg_sleep(30)");
          const aDone = outcome(a.client);
          const bDone = outcome(b.client);
          await waitFor(
            async () => await active(a.backend) && await active(b.backend),
            "both sessions sleeping",
          );

          await cancel(proxy, a.pid, a.key);
          assert.equal(await aDone, "57014", "A cancelled");
          assert.ok(await active(b.backend), "B untouched by A's cancel");

          const wrong = b.key.slice();
          wrong[31] = wrong[31]! ^ 1; // only the last byte differs: a 4-byte comparison would accept it
          await cancel(proxy, b.pid, wrong);
          await new Promise((resolve) => setTimeout(resolve, 300));
          assert.ok(await active(b.backend), "a key wrong in its last byte cancels nothing");

          await cancel(proxy, b.pid, b.key);
          assert.equal(await bDone, "57014", "B cancelled with its own key");
        } finally {
          await a.client.close();
          await b.client.close();
        }
      });
    }

    it("psql (libpq 18, protocol 3.2) cancels its own pg_sleep on Ctrl-C through pgrelay", async () => {
      const app = `pg18-ctrl-c-${process.pid}`;
      const env = clientEnv({
        host: "127.0.0.1",
        port: proxies.relay!.address.port,
        ...pg.users.scram,
        libDir: pg.libDir,
        env: { PGAPPNAME: app },
      });
      const args = [
        "-X",
        "-At",
        "-c",
        "select pg_sleep(30)",
        "-d",
        "dbname=postgres sslmode=disable min_protocol_version=3.2",
      ];
      const child = spawn(join(pg.clientBinDir, "psql"), args, { env });
      let stderr = "";
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (text: string) => stderr += text);
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      try {
        await waitFor(
          async () =>
            await pg.sql(
              `select count(*) from pg_stat_activity where application_name = '${app}' and state = 'active'`,
            ) === "1",
          "psql's pg_sleep running",
        );
        // process.kill, not child.kill: Deno's child_process would then report the signal, not psql's exit code.
        process.kill(child.pid!, "SIGINT");
        assert.equal(await exited, 1, stderr);
        assert.match(stderr, /canceling statement due to user request/);
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL");
      }
    });
  });
});
