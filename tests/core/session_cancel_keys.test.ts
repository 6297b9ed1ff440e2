/**
 * The session rewrites the server's BackendKeyData: the client gets a key of pgrelay's of the same length,
 * bound to the server connection, whatever the read boundaries; the key is unbound when the server goes and
 * forgotten when the session ends.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CancelableServer, ClientCancelKey } from "../../src/core/cancel_binding.ts";
import { NO_METRICS } from "../../src/core/metrics_sink.ts";
import type { RelaySettings } from "../../src/core/relay_settings.ts";
import { Frontend, type FrontendHost } from "../../src/frontend/frontend.ts";
import { CancelKeyRegistry } from "../../src/routing/cancel_keys.ts";
import { MemorySocket } from "../support/memory_socket.ts";

const SETTINGS: RelaySettings = {
  upstream: { hostname: "10.9.9.9", port: 5999 },
  startupTimeoutMs: 5000,
  connectTimeoutMs: 1000,
  maxMessageBytes: 1 << 20,
};
const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const frame = (type: string, body: number[]) => new Uint8Array([type.charCodeAt(0), ...u32(body.length + 4), ...body]);
const STARTUP = (() => {
  const body = [...u32(196608), ...new TextEncoder().encode("user\0alice\0database\0app\0\0")];
  return new Uint8Array([...u32(body.length + 4), ...body]);
})();
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

async function harness() {
  const registry = new CancelKeyRegistry<CancelableServer>({ workerId: 7, capacity: 10, keyOf: (s) => s.key });
  const issued: ClientCancelKey[] = [];
  const client = new MemorySocket();
  const servers: MemorySocket[] = [];
  let ended = false;
  const host: FrontendHost = {
    connect: (address) => {
      const server = new MemorySocket(address);
      servers.push(server);
      return Promise.resolve(server);
    },
    logger: { log() {} },
    metrics: NO_METRICS,
    cancelTarget: () => undefined,
    issueCancelKey: (server, length) => {
      const key = registry.issue(length, server);
      issued.push(key);
      return key;
    },
    sessionEnded: () => ended = true,
  };
  const session = new Frontend("t-1", client, SETTINGS, host);
  session.start();
  client.receive(STARTUP);
  await tick();
  return { session, client, server: servers[0]!, registry, issued, isEnded: () => ended };
}

function reply(secret: number[]) {
  const head = new Uint8Array([
    ...frame("R", [0, 0, 0, 0]),
    ...frame("S", [...new TextEncoder().encode("server_version\x0018.1\0")]),
  ]);
  const key = frame("K", [...u32(4242), ...secret]);
  const tail = frame("Z", ["I".charCodeAt(0)]);
  return { head, key, tail, all: new Uint8Array([...head, ...key, ...tail]) };
}

describe("Session: pgrelay-issued cancel keys", () => {
  for (const length of [4, 32]) {
    it(`gives the client a key of pgrelay's of ${length} bytes for the server's, at every split of the server's bytes`, async () => {
      const secret = Array.from({ length }, (_, i) => (i * 7 + 3) & 255);
      const { head, key, tail, all } = reply(secret);
      for (let split = 1; split < all.length; split++) {
        const { session, client, server, registry, issued } = await harness();
        server.receive(all.subarray(0, split));
        server.receive(all.subarray(split));
        const seen = client.bytes;
        assert.equal(seen.length, all.length, `split ${split}: same length`);
        assert.deepEqual([...seen.subarray(0, head.length)], [...head], `split ${split}: frames before K untouched`);
        assert.deepEqual([...seen.subarray(head.length + key.length)], [...tail], `split ${split}: frames after K untouched`);
        assert.equal(issued.length, 1);
        const mine = issued[0]!;
        assert.deepEqual(
          [...seen.subarray(head.length, head.length + key.length)],
          [...frame("K", [...u32(mine.processId), ...mine.secretKey])],
          `split ${split}: the client sees pgrelay's key`,
        );
        assert.notEqual(mine.processId, 4242);
        assert.equal(mine.secretKey.length, length);
        assert.equal(session.context.backendPid, 4242, "the session keeps the server's real pid");
        assert.deepEqual([...session.context.backendSecret!], secret);
        const target = registry.resolve(mine.processId, mine.secretKey);
        assert.equal(target?.key.processId, 4242);
        assert.deepEqual([...target!.key.secretKey], secret);
        assert.deepEqual(target?.server.address, SETTINGS.upstream);
        assert.equal(session.context.phase, "ready");
      }
    });
  }

  it("a server's bytes fed one at a time still reach the client with pgrelay's key", async () => {
    const { all, head } = reply([1, 2, 3, 4]);
    const { client, server, issued } = await harness();
    for (let i = 0; i < all.length; i++) server.receive(all.subarray(i, i + 1));
    assert.equal(client.bytes.length, all.length);
    assert.deepEqual([...client.bytes.subarray(head.length + 5, head.length + 9)], u32(issued[0]!.processId));
  });

  it("a server key longer than protocol 3.2 allows (256 bytes) ends the session; the client never sees it", async () => {
    const secret = Array.from({ length: 300 }, () => 0xab);
    const { client, server, issued } = await harness();
    server.receive(reply(secret).all);
    assert.equal(issued.length, 0);
    assert.equal(server.destroyed, true, "the server connection is dropped");
    assert.equal(client.ended, true);
    assert.equal(client.bytes.includes(0xab), false, "no byte of the server's secret reaches the client");
  });

  it("unbinds the key when the server goes, and forgets it when the session ends", async () => {
    const { client, server, registry, issued, isEnded } = await harness();
    server.receive(reply([1, 2, 3, 4]).all);
    const mine = issued[0]!;
    assert.equal(registry.size, 1);
    assert.ok(registry.resolve(mine.processId, mine.secretKey));
    server.events!.close();
    assert.equal(registry.resolve(mine.processId, mine.secretKey), undefined, "no server bound: nothing to cancel");
    client.events!.close();
    await tick();
    assert.equal(isEnded(), true);
    assert.equal(registry.size, 0, "the registry holds live sessions only");
    assert.equal(mine.live, false);
  });
});
