/**
 * Direct TLS on the upstream leg (`upstream_tls.negotiation: direct`, libpq 17's `sslnegotiation=direct`):
 * pgrelay as a process with a YAML config opens TLS at once, with ALPN "postgresql" and no SSLRequest, to
 * PostgreSQL 18 (ssl = on); against PostgreSQL 15, which has no direct TLS, the client gets 08001 and the log
 * says why and what to set instead; a TLS server that selects no ALPN is refused, as libpq refuses it.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import { STARTUP_CODE } from "../../src/protocol/codes.ts";
import { runPsql } from "../support/clients.ts";
import { type PgrelayProcess, spawnPgrelay } from "../support/pgrelay.ts";
import { startPostgres, type TlsPostgresCluster } from "../support/postgres.ts";

const SERVER_SSL = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
const TLS_HANDSHAKE_RECORD = 0x16;

/** A TCP forwarder to `port` that keeps the first bytes pgrelay sends on each connection. */
async function recordingForwarder(
  port: number,
): Promise<{ port: number; firsts: Uint8Array[]; close(): Promise<void> }> {
  const firsts: Uint8Array[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    }
    client.once("data", (chunk: Uint8Array) => firsts.push(chunk.slice(0, 8)));
    upstream.connect(port, "127.0.0.1");
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    firsts,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe("direct TLS on the upstream leg (upstream_tls.negotiation: direct)", () => {
  let pg18: TlsPostgresCluster;
  let pg15: TlsPostgresCluster;
  let dir = "";
  const started: PgrelayProcess[] = [];

  before(async () => {
    [pg18, pg15] = await Promise.all([
      startPostgres({ version: 18, ssl: true }),
      startPostgres({ version: 15, ssl: true }),
    ]);
    dir = await mkdtemp(join(tmpdir(), "pgrelay-direct-tls-"));
  });
  after(async () => {
    for (const proxy of started) await proxy.stop("SIGKILL");
    await Promise.all([pg18?.stop(), pg15?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** pgrelay with `upstream: 127.0.0.1:PORT` and the given upstream_tls block. */
  const relayTo = async (port: number, upstreamTls: string): Promise<PgrelayProcess> => {
    const file = join(dir, `p${port}-${started.length}.yaml`);
    await writeFile(file, `upstream: "127.0.0.1:${port}"\nupstream_tls: ${upstreamTls}\n`, { mode: 0o600 });
    const proxy = await spawnPgrelay(["--config", file]);
    started.push(proxy);
    return proxy;
  };
  const psql = (proxy: PgrelayProcess, cluster: TlsPostgresCluster, sql = SERVER_SSL) =>
    runPsql(["-At", "-c", sql, "-d", "dbname=postgres sslmode=disable"], {
      host: "127.0.0.1",
      port: proxy.address.port,
      ...cluster.users.scram,
    });

  it("PostgreSQL 18: the first bytes pgrelay sends are a TLS record, not an SSLRequest, and the server sees TLS", async () => {
    const forwarder = await recordingForwarder(pg18.port);
    try {
      const tlsBlock = (negotiation: string) =>
        `{ mode: verify-full, ca: ${
          JSON.stringify(pg18.pki.ca.certPath)
        }, server_name: localhost, negotiation: ${negotiation} }`;
      const direct = await relayTo(forwarder.port, tlsBlock("direct"));
      const result = await psql(direct, pg18);
      assert.equal(result.code, 0, `${result.stderr}\n${direct.stderr()}`);
      assert.equal(result.stdout.trim(), "t", "pg_stat_ssl: the session is TLS");
      assert.equal(forwarder.firsts.length, 1);
      assert.equal(forwarder.firsts[0]![0], TLS_HANDSHAKE_RECORD, "a ClientHello opens the connection");

      // The same server with the default negotiation: SSLRequest first.
      const postgres = await relayTo(forwarder.port, tlsBlock("postgres"));
      const viaRequest = await psql(postgres, pg18);
      assert.equal(viaRequest.stdout.trim(), "t", viaRequest.stderr);
      const first = forwarder.firsts[1]!;
      assert.deepEqual([...first], [
        0,
        0,
        0,
        8,
        ...[24, 16, 8, 0].map((s) => (STARTUP_CODE.SSL_REQUEST >>> s) & 255),
      ]);
    } finally {
      await forwarder.close();
    }
  });

  it("PostgreSQL 15 (no direct TLS): the client gets 08001, the log names the cause and negotiation: postgres", async () => {
    assert.ok(pg15.version < 17, `needs a server without direct TLS, got ${pg15.version}`);
    const direct = await relayTo(pg15.port, `{ mode: require, negotiation: direct }`);
    const result = await psql(direct, pg15, "select 1");
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /pgrelay could not connect to the database server/);
    assert.match(
      direct.stderr(),
      /"event":"upstream_failed".*the server closed the connection during the direct TLS handshake \(negotiation: direct\): PostgreSQL before 17, and any server with ssl = off, does not accept direct TLS; use negotiation: postgres/,
    );
    // The same server over SSLRequest works: it is the negotiation, not TLS, that PostgreSQL 15 lacks.
    const postgres = await relayTo(pg15.port, `{ mode: require }`);
    const fine = await psql(postgres, pg15);
    assert.equal(fine.stdout.trim(), "t", fine.stderr);
  });

  it("refuses a TLS server that selects no ALPN protocol (not a PostgreSQL 17+ server), before sending it anything", async () => {
    let received = 0;
    const sockets: tls.TLSSocket[] = [];
    const server = tls.createServer(
      { cert: pg18.pki.server.certPem, key: pg18.pki.server.keyPem },
      (socket) => {
        sockets.push(socket);
        socket.on("data", (chunk: Uint8Array) => received += chunk.length);
        socket.on("error", () => {});
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const direct = await relayTo(port, `{ mode: require, negotiation: direct }`);
      const result = await psql(direct, pg18, "select 1");
      assert.notEqual(result.code, 0);
      assert.match(
        direct.stderr(),
        /the server did not select ALPN \\"postgresql\\" on a direct TLS connection \(it selected none\)/,
      );
      assert.equal(received, 0, "no startup packet went to it");
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
