/**
 * Session: what a client is told when the server connection dies, what the server is told when the client
 * vanishes mid-query, and that neither the upstream's address nor an operating-system error reaches a client.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { LogFields } from "../../src/core/logger.ts";
import { NO_METRICS } from "../../src/core/metrics_sink.ts";
import type { RelaySettings } from "../../src/core/relay_settings.ts";
import { Frontend, type FrontendHost } from "../../src/frontend/frontend.ts";
import type { RelaySocket, SocketAddress } from "../../src/core/socket.ts";
import { parseBackendFrames } from "../support/backend_frames.ts";
import { errorFields } from "../support/raw_client.ts";
import { MemorySocket } from "../support/memory_socket.ts";
import { concatBytes } from "../support/bytes.ts";

const SETTINGS: RelaySettings = {
  upstream: { hostname: "10.9.9.9", port: 5999 },
  startupTimeoutMs: 5000,
  connectTimeoutMs: 1000,
  maxMessageBytes: 1 << 20,
};

const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const text = (s: string) => [...new TextEncoder().encode(s)];
const frame = (type: string, body: number[]) =>
  new Uint8Array([type.charCodeAt(0), ...u32(body.length + 4), ...body]);
const STARTUP = (() => {
  const body = [...u32(196608), ...text("user\0alice\0database\0app\0\0")];
  return new Uint8Array([...u32(body.length + 4), ...body]);
})();
const READY = new Uint8Array([
  ...frame("R", [0, 0, 0, 0]),
  ...frame("K", [...u32(4242), 9, 8, 7, 6]),
  ...frame("Z", text("I")),
]);
const fields = (
  pairs: Record<string, string>,
) => [...Object.entries(pairs).flatMap(([k, v]) => text(`${k}${v}\0`)), 0];

type Line = LogFields & { event: string; level: string };

/** A session relaying to one in-memory server; later connects (cancel requests) get their own sockets. */
async function readySession(connectResult?: (address: SocketAddress) => Promise<RelaySocket>) {
  const client = new MemorySocket();
  const servers: MemorySocket[] = [];
  const connects: SocketAddress[] = [];
  const lines: Line[] = [];
  let ended = false;
  const host: FrontendHost = {
    connect: (address) => {
      connects.push(address);
      if (connectResult && connects.length > 1) return connectResult(address);
      const server = new MemorySocket(address);
      servers.push(server);
      return Promise.resolve(server);
    },
    logger: { log: (level, event, fields = {}) => lines.push({ ...fields, event, level }) },
    metrics: NO_METRICS,
    cancelTarget: () => undefined,
    sessionEnded: () => ended = true,
  };
  const session = new Frontend("t-7", client, SETTINGS, host);
  session.start();
  client.receive(STARTUP);
  await tick();
  const server = servers[0]!;
  server.receive(READY);
  assert.equal(session.context.phase, "ready");
  const sent = client.written.length;
  return {
    session,
    client,
    server,
    servers,
    connects,
    lines,
    isEnded: () => ended,
    /** What the client received after the handshake, as frames. */
    afterReady: () => parseBackendFrames(concat(client.written.slice(sent))),
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const concat = concatBytes;

describe("Session when the server connection dies", () => {
  it("a server that closes without a word: the client gets FATAL 08006 naming the session, the log the cause", async () => {
    const { client, server, afterReady, lines, isEnded } = await readySession();
    server.events!.close();
    const frames = afterReady();
    assert.deepEqual(frames.map((f) => f.type), ["E"]);
    const error = errorFields(frames[0]!.body);
    assert.equal(error.S, "FATAL");
    assert.equal(error.V, "FATAL");
    assert.equal(error.C, "08006");
    assert.equal(error.M, "pgrelay lost the connection to the database server (session t-7)");
    assert.equal(error.H, "The administrator can find the cause in pgrelay's log under this session id.");
    assert.equal(client.ended, true);
    await tick();
    assert.equal(isEnded(), true);
    const lost = lines.find((l) => l.event === "server_lost");
    assert.equal(lost?.session, "t-7");
    assert.equal(lost?.level, "warn");
    assert.equal(lost?.error, "the server closed the connection without an error message");
  });

  it("a reset is reported the same way, and the log keeps the socket error", async () => {
    const { server, afterReady, lines } = await readySession();
    server.events!.close(new Error("connection reset by peer (ECONNRESET)"));
    assert.equal(errorFields(afterReady()[0]!.body).C, "08006");
    assert.equal(
      lines.find((l) => l.event === "server_lost")?.error,
      "connection reset by peer (ECONNRESET)",
    );
  });

  it("a WARNING or NOTICE before the close is relayed and does not count as the server's FATAL", async () => {
    const { server, afterReady } = await readySession();
    const warning = frame(
      "N",
      fields({
        S: "WARNING",
        V: "WARNING",
        C: "57P01",
        M: "terminating connection due to immediate shutdown command",
      }),
    );
    server.receive(warning);
    server.events!.close();
    const frames = afterReady();
    assert.deepEqual(frames.map((f) => f.type), ["N", "E"]);
    assert.deepEqual([...frames[0]!.body], [...warning.subarray(5)], "the server's warning untouched");
    assert.equal(errorFields(frames[1]!.body).C, "08006");
  });

  it("after the server's own FATAL (57P01) nothing is added", async () => {
    const { server, afterReady, lines } = await readySession();
    const fatal = frame(
      "E",
      fields({
        S: "FATAL",
        V: "FATAL",
        C: "57P01",
        M: "terminating connection due to administrator command",
      }),
    );
    server.receive(fatal);
    server.events!.close();
    const frames = afterReady();
    assert.deepEqual(frames.map((f) => f.type), ["E"]);
    assert.deepEqual([...frames[0]!.body], [...fatal.subarray(5)]);
    assert.equal(lines.some((l) => l.event === "server_lost"), false);
  });

  it("a close in the middle of a frame: the client's stream is not at a boundary, so it is only closed", async () => {
    const { client, server, lines } = await readySession();
    const row = frame("D", [0, 1, ...u32(4), ...text("abcd")]);
    server.receive(row.subarray(0, 7));
    const before = client.written.length;
    server.events!.close();
    assert.equal(client.written.length, before, "nothing written after the partial frame");
    assert.equal(client.ended, true);
    assert.equal(lines.find((l) => l.event === "server_lost")?.client_told, false);
  });

  it("passthrough: nothing is written into the client's TLS stream, and a close is no loss to report", async () => {
    const client = new MemorySocket();
    const servers: MemorySocket[] = [];
    const lines: Line[] = [];
    const host: FrontendHost = {
      connect: (address) => {
        const server = new MemorySocket(address);
        servers.push(server);
        return Promise.resolve(server);
      },
      logger: { log: (level, event, fields = {}) => lines.push({ ...fields, event, level }) },
      metrics: NO_METRICS,
      cancelTarget: () => undefined,
      sessionEnded: () => {},
    };
    const settings = {
      ...SETTINGS,
      clientEncryption: { mode: "passthrough", require: false, server: undefined },
    } as const;
    new Frontend("t-8", client, settings, host).start();
    client.receive([0, 0, 0, 8, 4, 210, 22, 47]);
    await tick();
    servers[0]!.receive(text("S"));
    await tick();
    assert.deepEqual([...client.bytes], text("S"));
    servers[0]!.receive([0x17, 3, 3, 0, 2, 1, 2]); // an encrypted record
    servers[0]!.events!.close();
    assert.deepEqual([...client.bytes], [...text("S"), 0x17, 3, 3, 0, 2, 1, 2]);
    assert.equal(client.ended, true);
    assert.equal(lines.some((l) => l.event === "server_lost"), false);
  });

  it("a malformed message from the server: 08P01 naming the session, not the upstream", async () => {
    const { client, server, afterReady, lines } = await readySession();
    server.receive([0x44, 0, 0, 0, 1]);
    const error = errorFields(afterReady()[0]!.body);
    assert.equal(error.C, "08P01");
    assert.equal(error.M, "pgrelay received a malformed message from the database server (session t-7)");
    assert.doesNotMatch(new TextDecoder().decode(client.bytes), /10\.9\.9\.9|5999/);
    assert.match(String(lines.find((l) => l.event === "upstream_protocol_error")?.error), /10\.9\.9\.9:5999/);
  });
});

describe("Session when the client vanishes", () => {
  it("mid-query: a CancelRequest with the backend's key goes to the upstream, then the server connection closes", async () => {
    const { client, server, servers, connects, lines, isEnded } = await readySession();
    client.receive(frame("Q", text("select pg_sleep(60)\0")));
    client.events!.close();
    await tick();
    assert.deepEqual(connects, [SETTINGS.upstream, SETTINGS.upstream]);
    const cancel = servers[1]!;
    assert.deepEqual([...cancel.bytes], [0, 0, 0, 16, 4, 210, 22, 46, ...u32(4242), 9, 8, 7, 6]);
    assert.equal(server.destroyed, false, "the server connection stays until the cancel is delivered");
    cancel.events!.close(); // PostgreSQL closes a cancel connection once it has signalled the backend
    assert.equal(server.destroyed, true);
    await tick();
    assert.equal(isEnded(), true);
    assert.equal(lines.find((l) => l.event === "client_vanished")?.backend_pid, 4242);
  });

  it("mid-COPY FROM STDIN as well", async () => {
    const { client, server, servers } = await readySession();
    client.receive(frame("Q", text("copy t from stdin\0")));
    server.receive(frame("G", [0, 0, 0]));
    client.receive(frame("d", text("1\n")));
    client.events!.close();
    await tick();
    assert.equal(servers.length, 2, "a cancel connection");
    servers[1]!.events!.close();
    assert.equal(server.destroyed, true);
  });

  it("an idle client (last request answered): no cancel, the server connection is ended normally", async () => {
    const { client, server, connects } = await readySession();
    client.receive(frame("Q", text("select 1\0")));
    server.receive(new Uint8Array([...frame("C", text("SELECT 1\0")), ...frame("Z", text("I"))]));
    client.events!.close();
    await tick();
    assert.equal(connects.length, 1);
    assert.equal(server.ended, true);
    assert.equal(server.destroyed, false);
  });

  it("a client that sent Terminate is not treated as vanished", async () => {
    const { client, server, connects } = await readySession();
    client.receive(frame("Q", text("select 1\0")));
    client.receive(frame("X", []));
    client.events!.close();
    await tick();
    assert.equal(connects.length, 1);
    assert.equal(server.ended, true);
  });

  it("a cancel that cannot connect still closes the server connection", async () => {
    const { client, server, lines } = await readySession(() =>
      Promise.reject(new Error("connection refused"))
    );
    client.receive(frame("Q", text("select pg_sleep(60)\0")));
    client.events!.close();
    await tick();
    assert.equal(server.destroyed, true);
    assert.equal(lines.find((l) => l.event === "cancel_failed")?.error, "connection refused");
  });
});

describe("Session: pgrelay's own failures before login", () => {
  it("a TLS request pgrelay cannot serve gets the session id, not the reason (the log has it)", async () => {
    const client = new MemorySocket();
    const lines: Line[] = [];
    const host: FrontendHost = {
      connect: () => Promise.reject(new Error("no upstream in this test")),
      logger: { log: (level, event, fields = {}) => lines.push({ ...fields, event, level }) },
      metrics: NO_METRICS,
      cancelTarget: () => undefined,
      sessionEnded: () => {},
    };
    // Terminate mode with no certificate loaded, on a socket that cannot start TLS.
    const settings: RelaySettings = { ...SETTINGS, clientEncryption: { mode: "terminate", require: false, server: undefined } };
    const session = new Frontend("t-9", client, settings, host);
    session.start();
    client.receive(new Uint8Array([...u32(8), ...u32(80877103)]));
    await tick();
    const [error] = parseBackendFrames(concat(client.written));
    const told = errorFields(error!.body);
    assert.equal(told.S, "FATAL");
    assert.match(told.M ?? "", /\(session t-9\)/);
    assert.doesNotMatch(told.M ?? "", /certificate/);
    assert.ok(lines.some((l) => l.event === "tls_unavailable" && l.session === "t-9" && /certificate/.test(String(l.error))));
  });
});
