import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Frontend, type FrontendHost } from "../../src/frontend/frontend.ts";
import { NO_METRICS } from "../../src/core/metrics_sink.ts";
import type { RelaySettings } from "../../src/core/relay_settings.ts";
import type { RelaySocket, SocketAddress } from "../../src/core/socket.ts";
import { decodeErrorFields } from "../../src/protocol/error_response.ts";
import { MemorySocket } from "../support/memory_socket.ts";

const SETTINGS: RelaySettings = {
  upstream: { hostname: "10.9.9.9", port: 5999 },
  startupTimeoutMs: 5000,
  connectTimeoutMs: 1000,
  maxMessageBytes: 1 << 20,
};

const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const startupPacket = (text: string) => {
  const body = [...u32(196608), ...new TextEncoder().encode(text)];
  return new Uint8Array([...u32(body.length + 4), ...body]);
};
const frame = (type: string, body: number[]) => new Uint8Array([type.charCodeAt(0), ...u32(body.length + 4), ...body]);
const STARTUP = startupPacket("user\0alice\0database\0app\0\0");

function harness(
  settings: Partial<RelaySettings> = {},
  connectResult?: (address: SocketAddress) => Promise<RelaySocket>,
  cancelTarget: FrontendHost["cancelTarget"] = () => undefined,
) {
  const client = new MemorySocket();
  const servers: MemorySocket[] = [];
  const connects: SocketAddress[] = [];
  let ended = false;
  const host: FrontendHost = {
    connect: (address) => {
      connects.push(address);
      if (connectResult) return connectResult(address);
      const server = new MemorySocket(address);
      servers.push(server);
      return Promise.resolve(server);
    },
    logger: { log() {} },
    metrics: NO_METRICS,
    cancelTarget,
    sessionEnded: () => ended = true,
  };
  const session = new Frontend("t-1", client, { ...SETTINGS, ...settings }, host);
  session.start();
  return { session, client, servers, connects, isEnded: () => ended };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const errorOf = (bytes: Uint8Array) => {
  assert.equal(String.fromCharCode(bytes[0]!), "E", "expected an ErrorResponse");
  return Object.fromEntries(decodeErrorFields(bytes.subarray(5)));
};

describe("Session", () => {
  it("answers SSLRequest with N, then relays the StartupMessage byte for byte", async () => {
    const { client, servers, connects } = harness();
    client.receive([0, 0, 0, 8, 4, 210, 22, 47]);
    assert.deepEqual([...client.bytes], ["N".charCodeAt(0)]);
    client.receive(STARTUP.subarray(0, 3));
    client.receive(STARTUP.subarray(3));
    await tick();
    assert.deepEqual(connects, [SETTINGS.upstream]);
    assert.deepEqual([...servers[0]!.bytes], [...STARTUP]);
  });

  it("relays server frames unchanged and tracks backend key, parameters and transaction status", async () => {
    const { session, client, servers } = harness();
    client.receive(STARTUP);
    await tick();
    const server = servers[0]!;
    const reply = new Uint8Array([
      ...frame("R", [0, 0, 0, 0]),
      ...frame("S", [...new TextEncoder().encode("server_version\x0015.1\0")]),
      ...frame("K", [...u32(4242), 9, 8, 7, 6]),
      ...frame("Z", ["T".charCodeAt(0)]),
    ]);
    server.receive(reply.subarray(0, 11));
    server.receive(reply.subarray(11));
    assert.deepEqual([...client.bytes], [...reply]);
    assert.equal(session.context.user, "alice");
    assert.equal(session.context.database, "app");
    assert.equal(session.context.backendPid, 4242);
    assert.equal(session.context.parameters.get("server_version"), "15.1");
    assert.equal(session.context.transactionStatus, "in_transaction");
    assert.equal(session.context.phase, "ready");
  });

  it("stops reading the server while the client is backed up, and resumes on drain", async () => {
    const { client, servers } = harness();
    client.receive(STARTUP);
    await tick();
    const server = servers[0]!;
    client.congested = true;
    server.receive(frame("D", [1, 2, 3]));
    assert.equal(server.paused, true);
    client.drain();
    assert.equal(server.paused, false);
    server.congested = true;
    client.receive(frame("Q", [0x3b, 0]));
    assert.equal(client.paused, true);
    server.drain();
    assert.equal(client.paused, false);
  });

  it("answers a garbage first packet with FATAL 08P01 and never connects", async () => {
    const { client, connects, isEnded } = harness();
    client.receive(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    await tick();
    const fields = errorOf(client.bytes);
    assert.equal(fields.C, "08P01");
    assert.equal(fields.S, "FATAL");
    assert.match(fields.M!, /invalid length of startup packet/);
    assert.equal(client.ended, true);
    assert.deepEqual(connects, []);
    assert.equal(isEnded(), true);
  });

  it("tells the client FATAL 08001 with the session id, never the upstream or the cause, when it cannot connect", async () => {
    const { client } = harness({}, () => Promise.reject(new Error("connection refused (ECONNREFUSED)")));
    client.receive(STARTUP);
    await tick();
    await tick();
    const fields = errorOf(client.bytes);
    assert.equal(fields.C, "08001");
    assert.equal(fields.M, "pgrelay could not connect to the database server (session t-1)");
    assert.equal(fields.H, "The administrator can find the cause in pgrelay's log under this session id.");
    assert.doesNotMatch(new TextDecoder().decode(client.bytes), /10\.9\.9\.9|5999|refused/);
    assert.equal(client.ended, true);
  });

  it("closes a client that does not finish startup in time with FATAL 57014", async () => {
    const { client, isEnded } = harness({ startupTimeoutMs: 30 });
    client.receive(STARTUP.subarray(0, 5));
    await new Promise((resolve) => setTimeout(resolve, 80));
    const fields = errorOf(client.bytes);
    assert.equal(fields.C, "57014");
    assert.match(fields.M!, /not ready within 30 ms/);
    assert.equal(isEnded(), true);
  });

  it("refuses an oversized client message with 08P01 and drops the server connection", async () => {
    const { client, servers } = harness();
    client.receive(STARTUP);
    await tick();
    servers[0]!.receive(frame("Z", [73]));
    const before = client.written.length;
    client.receive([0x51, 0x7f, 0xff, 0xff, 0xff, 0x20]);
    const fields = errorOf(client.bytes.subarray(client.written.slice(0, before).reduce((n, c) => n + c.length, 0)));
    assert.equal(fields.C, "08P01");
    assert.match(fields.M!, /invalid message from client: type 'Q' with length 2147483647/);
    assert.equal(servers[0]!.destroyed, true);
    assert.deepEqual([...servers[0]!.bytes], [...STARTUP], "the bad frame never reached the server");
  });

  it("forwards a CancelRequest as the server's real key to the server its key is bound to, then closes", async () => {
    const bound = { hostname: "10.1.1.1", port: 6001 };
    const real = new Uint8Array([0, 0, 0, 16, 4, 210, 22, 46, ...u32(777), 9, 9, 9, 9]);
    const asked: Array<[number, number[]]> = [];
    const { client, servers, connects } = harness({}, undefined, (pid, secret) => {
      asked.push([pid, [...secret]]);
      return { address: bound, packet: real };
    });
    client.receive(new Uint8Array([0, 0, 0, 16, 4, 210, 22, 46, ...u32(4242), 1, 2, 3, 4]));
    await tick();
    assert.deepEqual(asked, [[4242, [1, 2, 3, 4]]]);
    assert.deepEqual(connects, [bound]);
    assert.deepEqual([...servers[0]!.bytes], [...real]);
    assert.equal(client.ended, false);
    servers[0]!.events?.close();
    assert.equal(client.ended, true);
  });

  it("drops a CancelRequest with an unknown or stale key: no upstream connection, the client is closed", async () => {
    const { client, connects } = harness();
    client.receive(new Uint8Array([0, 0, 0, 16, 4, 210, 22, 46, ...u32(4242), 1, 2, 3, 4]));
    await tick();
    assert.deepEqual(connects, []);
    assert.equal(client.ended, true);
    assert.equal(client.written.length, 0, "nothing is answered, as PostgreSQL does");
  });
});
