/**
 * limits.startup with real sockets and a real server: connections that have not finished their startup
 * phase are capped per source and overall, the one over the cap gets FATAL 53300 and is closed at once, and
 * every slot comes back when its connection closes or becomes ready.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Proxy } from "../../src/core/proxy.ts";
import { parseLimits } from "../../src/limits/limits_schema.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { frontend } from "../support/raw_client.ts";
import { sleep, waitFor } from "../support/wait.ts";

interface Connection {
  socket: Socket;
  /** Everything received so far. */
  received: () => Uint8Array;
  closed: Promise<void>;
}

function open(proxy: Proxy): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = connect(proxy.address.port, proxy.address.hostname);
    const chunks: Uint8Array[] = [];
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    socket.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    socket.once("error", () => {}); // a refused connection may see a reset
    socket.once("connect", () => resolve({ socket, received: () => Buffer.concat(chunks), closed }));
    socket.once("error", reject);
  });
}

/** The SQLSTATE of the ErrorResponse a connection received, or undefined. */
function sqlstateOf(bytes: Uint8Array): string | undefined {
  if (bytes[0] !== 0x45) return undefined;
  const text = new TextDecoder().decode(bytes.subarray(5));
  return /\0C(\w{5})\0/.exec(`\0${text}`)?.[1];
}

function messageOf(bytes: Uint8Array): string {
  return /\0M([^\0]*)\0/.exec(`\0${new TextDecoder().decode(bytes.subarray(5))}`)?.[1] ?? "";
}

/** Logs in as the trust user and waits for ReadyForQuery. */
async function login(proxy: Proxy, user: string): Promise<Connection> {
  const connection = await open(proxy);
  connection.socket.write(frontend.startupMessage({ user, database: "postgres" }));
  await waitFor(() => {
    const bytes = connection.received();
    return bytes.length >= 6 && bytes[bytes.length - 6] === 0x5a;
  }, "ReadyForQuery");
  return connection;
}

describe("limits.startup through pgrelay", () => {
  let cluster: PostgresCluster;
  const proxies: Proxy[] = [];
  const sockets: Socket[] = [];

  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    for (const proxy of proxies) await proxy.close();
    await cluster?.stop();
  });

  const start = async (startup: Record<string, number> | undefined, extra: Record<string, unknown> = {}) => {
    const proxy = await startTestProxy(cluster, { limits: parseLimits(startup ? { startup, ...extra } : extra) });
    proxies.push(proxy);
    return proxy;
  };
  const silent = async (proxy: Proxy, n: number) => {
    const opened: Connection[] = [];
    for (let i = 0; i < n; i++) {
      const connection = await open(proxy);
      sockets.push(connection.socket);
      opened.push(connection);
    }
    await waitFor(() => proxy.starting === n, `${n} connections in their startup phase`);
    return opened;
  };
  /** The next connection is refused with 53300 and closed by pgrelay without the client doing anything. */
  const refused = async (proxy: Proxy, pattern: RegExp) => {
    const extra = await open(proxy);
    sockets.push(extra.socket);
    await Promise.race([extra.closed, sleep(5000).then(() => assert.fail("the refused connection was not closed within 5 s"))]);
    assert.equal(sqlstateOf(extra.received()), "53300", "FATAL 53300 in PostgreSQL's format");
    assert.match(messageOf(extra.received()), pattern);
  };

  it("per source: N silent connections, the next gets 53300; after they close new ones are accepted", async () => {
    const proxy = await start({ per_source: 5 });
    const silentOnes = await silent(proxy, 5);
    await refused(proxy, /too many connections still starting up from 127\.0\.0\.1: pgrelay allows 5 \(limits\.startup\.per_source\)/);
    assert.equal(proxy.starting, 5, "the refused connection holds no slot");
    for (const connection of silentOnes) connection.socket.destroy();
    await waitFor(() => proxy.starting === 0, "the count back at zero");
    await silent(proxy, 4);
    const ready = await login(proxy, cluster.users.trust.user); // the fifth one logs in for real
    sockets.push(ready.socket);
    await waitFor(() => proxy.starting === 4, "the ready session out of the count");
  });

  it("overall: max_connections counts every source, and a ready session leaves the count", async () => {
    const proxy = await start({ max_connections: 3 });
    // A logged-in session is no longer starting up: it does not count.
    const session = await login(proxy, cluster.users.trust.user);
    sockets.push(session.socket);
    await waitFor(() => proxy.starting === 0, "the ready session out of the count");
    const silentOnes = await silent(proxy, 3);
    await refused(proxy, /too many connections still starting up: pgrelay allows 3 at once \(limits\.startup\.max_connections\)/);
    for (const connection of silentOnes) connection.socket.end();
    await waitFor(() => proxy.starting === 0, "the count back at zero");
    const again = await silent(proxy, 3);
    for (const connection of again) connection.socket.destroy();
    await waitFor(() => proxy.starting === 0, "the count back at zero again");
  });

  it("TLS passthrough (node sockets): an SSLRequest over the limit gets 53300, a passed-through session leaves the count", async () => {
    const tlsCluster = await startPostgres({ ssl: true });
    try {
      const proxy = await startTestProxy(tlsCluster, {
        limits: parseLimits({ startup: { per_source: 2 } }),
        clientEncryption: { mode: "passthrough", require: false, server: undefined },
      });
      proxies.push(proxy);
      // The server answers S through pgrelay: the session is passthrough, no longer starting up.
      const passed = await open(proxy);
      sockets.push(passed.socket);
      passed.socket.write(frontend.sslRequest());
      await waitFor(() => passed.received().length === 1, "the server's answer to SSLRequest");
      assert.equal(String.fromCharCode(passed.received()[0]!), "S");
      await waitFor(() => proxy.starting === 0, "the passthrough session out of the count");
      await silent(proxy, 2);
      const extra = await open(proxy);
      sockets.push(extra.socket);
      extra.socket.write(frontend.sslRequest());
      await Promise.race([extra.closed, sleep(5000).then(() => assert.fail("not closed within 5 s"))]);
      assert.equal(sqlstateOf(extra.received()), "53300", "the answer to its SSLRequest is the FATAL, in plaintext");
    } finally {
      await tlsCluster.stop();
    }
  });

  it("per_user slots of a client that hangs up before authenticating are free at once", async () => {
    const proxy = await start(undefined, { per_user: 1 });
    const user = cluster.users.scram.user;
    // The server asks for a password; the client leaves instead of answering.
    const first = await open(proxy);
    first.socket.write(frontend.startupMessage({ user, database: "postgres" }));
    await waitFor(() => first.received().length > 0 && first.received()[0] === 0x52, "the password request");
    first.socket.destroy();
    await first.closed;
    const second = await open(proxy);
    sockets.push(second.socket);
    second.socket.write(frontend.startupMessage({ user, database: "postgres" }));
    await waitFor(() => second.received().length > 0, "an answer to the second startup");
    assert.equal(second.received()[0], 0x52, `the server's password request, not ${sqlstateOf(second.received()) ?? "?"}`);
  });
});
