/**
 * The real proof for `auth.mode: scram`: a client authenticates to ScramServerExchange with its password,
 * and the ClientKey recovered from its proof (no password) logs in to a real PostgreSQL server.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { pemToDer, ScramServerExchange, tlsServerEndPointHash } from "../../src/auth/scram_server.ts";
import { parseScramVerifier, type ScramVerifier } from "../../src/auth/scram_verifier.ts";
import { lookupVerifier, parseUserlist } from "../../src/auth/userlist.ts";
import { runPsql } from "../support/clients.ts";
import * as frontend from "../support/frontend_frames.ts";
import { type PostgresCluster, startPostgres, type TlsPostgresCluster } from "../support/postgres.ts";
import { tlsAfterSslRequest } from "../support/tls_client.ts";
import { PasswordScramClient } from "../support/password_scram_client.ts";
import { dataRowValues, saslMechanisms } from "../support/backend_frames.ts";
import { BackendError, RawClient } from "../support/raw_client.ts";
import { loginWithClientKey } from "./login_with_client_key.ts";

/** Client ↔ pgrelay in memory: returns the ClientKey ScramServerExchange recovers from the proof. */
async function clientKeyFromClient(
  verifier: ScramVerifier,
  user: string,
  password: string,
): Promise<Uint8Array> {
  const server = new ScramServerExchange(verifier, { user, offerPlus: false });
  const client = new PasswordScramClient({ password });
  const first = await server.handleInitial("SCRAM-SHA-256", client.clientFirst());
  assert.ok("serverFirst" in first, JSON.stringify(first));
  const final = await server.handleFinal(client.clientFinal(first.serverFirst));
  assert.ok("clientKey" in final, JSON.stringify(final));
  client.verifyServerFinal(final.serverFinal);
  return final.clientKey;
}

describe("auth.mode scram against PostgreSQL", () => {
  let pg: PostgresCluster;
  let stored: string;

  before(async () => {
    pg = await startPostgres();
    const { user, password } = pg.users.superuser;
    const res = await runPsql(
      ["-At", "-c", `select rolpassword from pg_authid where rolname = '${pg.users.scram.user}'`],
      { host: pg.host, port: pg.port, user, password },
    );
    assert.equal(res.code, 0, res.stderr);
    stored = res.stdout.trim();
  });

  after(async () => {
    await pg?.stop();
  });

  it("reads the server's verifier through an auth file and matches the password", async () => {
    const users = parseUserlist(`; made from pg_authid\n"${pg.users.scram.user}" "${stored}"\n`);
    const entry = lookupVerifier(users, pg.users.scram.user);
    assert.equal(entry.kind, "scram");
    const verifier = parseScramVerifier(stored);
    assert.deepEqual(
      await makeScramVerifier(pg.users.scram.password, verifier.salt, verifier.iterations),
      verifier,
    );
  });

  it("logs in upstream with only the ClientKey recovered from the client's proof", async () => {
    const { user, password } = pg.users.scram;
    const verifier = parseScramVerifier(stored);
    const clientKey = await clientKeyFromClient(verifier, user, password);
    const wire = await RawClient.connect(pg.host, pg.port);
    try {
      await loginWithClientKey(wire, user, clientKey, verifier);
      let message = await wire.readMessage();
      while (message.type !== "Z") {
        assert.notEqual(message.type, "E");
        message = await wire.readMessage();
      }
      wire.sendBytes(frontend.query("select current_user"));
      const rows = [];
      for (message = await wire.readMessage(); message.type !== "Z"; message = await wire.readMessage()) {
        if (message.type === "D") rows.push(dataRowValues(message.body));
      }
      assert.deepEqual(rows, [[user]]);
      wire.sendBytes(frontend.terminate());
    } finally {
      await wire.close();
    }
  });

  it("a ClientKey from a wrong password fails at the server with 28P01", async () => {
    const { user } = pg.users.scram;
    const real = parseScramVerifier(stored);
    // An auth file entry for the wrong password with the server's salt and iterations: pgrelay accepts the
    // client, the salt check passes, and only PostgreSQL can tell the proof is wrong.
    const wrongVerifier = await makeScramVerifier("wrong-password", real.salt, real.iterations);
    const clientKey = await clientKeyFromClient(wrongVerifier, user, "wrong-password");
    const wire = await RawClient.connect(pg.host, pg.port);
    try {
      await assert.rejects(loginWithClientKey(wire, user, clientKey, wrongVerifier), (err: unknown) => {
        assert.ok(err instanceof BackendError, String(err));
        assert.equal(err.fields["C"], "28P01");
        assert.equal(err.fields["M"], `password authentication failed for user "${user}"`);
        return true;
      });
    } finally {
      await wire.close();
    }
  });

  it("a stale auth-file verifier (other salt) is caught before any proof is sent", async () => {
    const { user, password } = pg.users.scram;
    const real = parseScramVerifier(stored);
    const stale = await makeScramVerifier(password, new Uint8Array(16).fill(9), real.iterations);
    const clientKey = await clientKeyFromClient(stale, user, password);
    const wire = await RawClient.connect(pg.host, pg.port);
    try {
      await assert.rejects(loginWithClientKey(wire, user, clientKey, stale), /differs from the auth file's/);
    } finally {
      await wire.close();
    }
  });
});

describe("tls-server-end-point data against PostgreSQL's own TLS certificate", () => {
  let pg: TlsPostgresCluster;

  before(async () => {
    pg = await startPostgres({ ssl: true });
  });

  after(async () => {
    await pg?.stop();
  });

  /** SCRAM-SHA-256-PLUS over TLS with the given binding data; resolves to the last auth code or error. */
  async function plusLogin(binding: Uint8Array): Promise<number | BackendError> {
    const socket = await tlsAfterSslRequest(pg.port, { ca: pg.pki.ca.certPem });
    const wire = RawClient.over(socket);
    try {
      wire.sendBytes(frontend.startupMessage({ user: pg.users.scram.user, database: "postgres" }));
      const mechanisms = saslMechanisms(await wire.expectAuth(10));
      assert.deepEqual(mechanisms, ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
      const client = new PasswordScramClient({
        password: pg.users.scram.password,
        gs2Header: "p=tls-server-end-point,,",
        channelBinding: binding,
      });
      wire.sendBytes(frontend.saslInitialResponse("SCRAM-SHA-256-PLUS", client.clientFirst()));
      wire.sendBytes(frontend.saslResponse(client.clientFinal(await wire.expectAuth(11))));
      client.verifyServerFinal(await wire.expectAuth(12));
      await wire.expectAuth(0);
      return 0;
    } catch (err) {
      if (err instanceof BackendError) return err;
      throw err;
    } finally {
      await wire.close();
    }
  }

  it("our hash of the server certificate is the binding PostgreSQL expects", async () => {
    const binding = await tlsServerEndPointHash(pemToDer(pg.pki.server.certPem));
    assert.equal(await plusLogin(binding), 0);
  });

  it("a hash of another certificate fails PostgreSQL's channel binding check", async () => {
    const result = await plusLogin(await tlsServerEndPointHash(pemToDer(pg.pki.proxy.certPem)));
    assert.ok(result instanceof BackendError, String(result));
    assert.equal(result.fields["C"], "28000");
    assert.match(result.fields["M"] ?? "", /channel binding check failed/);
  });

  it("ScramClientWithKey also works over the TLS connection (no binding toward upstream)", async () => {
    const { user, password } = pg.users.scram;
    const res = await runPsql(["-At", "-c", `select rolpassword from pg_authid where rolname = '${user}'`], {
      host: pg.host,
      port: pg.port,
      user: pg.users.superuser.user,
      password: pg.users.superuser.password,
    });
    assert.equal(res.code, 0, res.stderr);
    const verifier = parseScramVerifier(res.stdout.trim());
    const clientKey = await clientKeyFromClient(verifier, user, password);
    const wire = RawClient.over(await tlsAfterSslRequest(pg.port, { ca: pg.pki.ca.certPem }));
    try {
      await loginWithClientKey(wire, user, clientKey, verifier);
    } finally {
      await wire.close();
    }
  });
});
