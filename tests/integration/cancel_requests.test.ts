/**
 * CancelRequests through pgrelay with real sockets and a fake upstream that counts the connections pgrelay
 * opens: one cancel per client connection (whatever follows it is ignored), and a cancel rate per source
 * address (limits.cancel_rate, 10 a second with a burst of 20 by default), whose drops /metrics counts.
 * The fake logs sessions in with a backend key of its own; the cancels use the keys pgrelay issued for them.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Proxy } from "../../src/core/proxy.ts";
import { parseLimits } from "../../src/limits/limits_schema.ts";
import { ProxyMetrics } from "../../src/metrics/proxy_metrics.ts";
import { parseBackendFrames } from "../support/backend_frames.ts";
import { type FakeUpstream, type Serve, startFakeUpstream } from "../support/fake_upstream.ts";
import { cancelRequest, startupMessage } from "../support/frontend_frames.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { sleep, waitFor } from "../support/wait.ts";

/** A connected socket and a promise of its close (listened for from the start, so it cannot be missed). */
function open(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve({ socket, closed }));
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    socket.on("error", reject);
  });
}

const CANCEL_REQUEST_CODE = 80877102;
const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const frame = (type: string, body: number[]) => [type.charCodeAt(0), ...u32(body.length + 4), ...body];

/** A cancel ends the connection; a startup gets AuthenticationOk, BackendKeyData (pid from `user`, secret 42), ReadyForQuery. */
const serveSessions: Serve = (socket, packet) => {
  const view = new DataView(packet.buffer, packet.byteOffset);
  if (view.getInt32(4) === CANCEL_REQUEST_CODE) {
    socket.end();
    return;
  }
  const pid = Number(/user\0(\d+)\0/.exec(new TextDecoder().decode(packet))?.[1]);
  socket.write(new Uint8Array([...frame("R", u32(0)), ...frame("K", [...u32(pid), ...u32(42)]), ...frame("Z", [73])]));
};

/** A session through `port` whose server key has pid `serverPid`: its socket and the key pgrelay gave it. */
async function session(port: number, serverPid: number): Promise<{ socket: Socket; pid: number; secret: number }> {
  const { socket } = await open(port);
  const chunks: Uint8Array[] = [];
  const ready = new Promise<void>((resolve) =>
    socket.on("data", (chunk: Uint8Array) => {
      chunks.push(chunk);
      if (chunks.reduce((n, c) => n + c.length, 0) >= 9 + 13 + 6) resolve();
    })
  );
  socket.write(startupMessage({ user: String(serverPid), database: "x" }));
  await ready;
  const bytes = new Uint8Array(chunks.flatMap((c) => [...c]));
  const key = parseBackendFrames(bytes).find((m) => m.type === "K")!.body;
  const view = new DataView(key.buffer, key.byteOffset);
  return { socket, pid: view.getInt32(0), secret: view.getInt32(4) };
}

describe("CancelRequest through pgrelay", () => {
  let upstream: FakeUpstream;
  const proxies: Proxy[] = [];
  const start = async (metrics = new ProxyMetrics()) => {
    const proxy = await startTestProxy(upstream, { limits: parseLimits({}), metrics });
    proxies.push(proxy);
    return proxy;
  };

  before(async () => {
    upstream = await startFakeUpstream(serveSessions);
  });
  after(async () => {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await upstream?.close();
  });

  it("50 CancelRequests on one connection open at most one upstream connection", async () => {
    const proxy = await start();
    const a = await session(proxy.address.port, 1000);
    const b = await session(proxy.address.port, 2000);
    const before = upstream.connections;
    // In one write, and as separate writes a millisecond apart.
    const burst = await open(proxy.address.port);
    const fifty = new Uint8Array(50 * 16);
    for (let i = 0; i < 50; i++) fifty.set(i === 0 ? cancelRequest(a.pid, a.secret) : cancelRequest(b.pid, b.secret), i * 16);
    burst.socket.write(fifty);
    const trickle = await open(proxy.address.port);
    for (let i = 0; i < 50 && !trickle.socket.destroyed; i++) {
      trickle.socket.write(i === 0 ? cancelRequest(b.pid, b.secret) : cancelRequest(a.pid, a.secret));
      await sleep(1);
    }
    await Promise.all([burst.closed, trickle.closed]);
    await sleep(300);
    assert.equal(upstream.connections - before, 2, "one upstream connection per client connection");
    const pids = upstream.firstPackets.slice(-2).map((p) => new DataView(p.buffer, p.byteOffset).getInt32(8)).sort();
    assert.deepEqual(pids, [1000, 2000], "only the first cancel of each connection is sent, with the server's key");
    a.socket.destroy();
    b.socket.destroy();
  });

  it("a key pgrelay did not issue is dropped (no upstream connection); with tls.mode passthrough it goes upstream unchanged", async () => {
    const metrics = new ProxyMetrics();
    const proxy = await start(metrics);
    const before = upstream.connections;
    const unknown = await open(proxy.address.port);
    unknown.socket.write(cancelRequest(4242, 42));
    await unknown.closed;
    await sleep(200);
    assert.equal(upstream.connections, before, "dropped without connecting upstream");
    assert.match(metrics.render({ sessions: [], bufferedBytes: 0, upstreamUp: 1, draining: false }), /^pgrelay_cancel_requests_total\{result="dropped"\} 1$/m);
    // Passthrough clients hold the server's own key (pgrelay cannot rewrite it inside their TLS).
    const passthrough = await startTestProxy(upstream, {
      limits: parseLimits({}),
      clientEncryption: { mode: "passthrough", require: false, server: undefined },
    });
    proxies.push(passthrough);
    const served = await open(passthrough.address.port);
    served.socket.write(cancelRequest(4243, 43));
    await served.closed;
    await waitFor(() => upstream.connections === before + 1, "the cancel to reach upstream");
    assert.deepEqual(upstream.firstPackets.at(-1), cancelRequest(4243, 43), "unchanged");
  });

  it("a burst of cancels from one address beyond cancel_rate is dropped and counted", async () => {
    const metrics = new ProxyMetrics();
    const proxy = await start(metrics);
    const target = await session(proxy.address.port, 3000);
    const before = upstream.connections;
    const startedAt = performance.now();
    const sockets = await Promise.all(Array.from({ length: 60 }, () => open(proxy.address.port)));
    for (const { socket } of sockets) socket.write(cancelRequest(target.pid, target.secret));
    await Promise.all(sockets.map((s) => s.closed));
    const sample = (result: string) =>
      Number(new RegExp(`^pgrelay_cancel_requests_total\\{result="${result}"\\} (\\d+)$`, "m").exec(
        metrics.render({ sessions: proxy.sessions, bufferedBytes: 0, upstreamUp: 1, draining: false }),
      )?.[1]);
    await waitFor(() => sample("forwarded") + sample("rate_limited") === 60, "every cancel to be counted");
    const seconds = (performance.now() - startedAt) / 1000;
    const forwarded = sample("forwarded");
    // A burst of 20, plus 10 a second for as long as the burst took (a loaded machine may take a while).
    assert.ok(forwarded >= 20 && forwarded <= 21 + Math.ceil(10 * seconds), `forwarded ${forwarded} in ${seconds} s`);
    assert.ok(forwarded < 60, "some were dropped");
    assert.equal(sample("rate_limited"), 60 - forwarded);
    await waitFor(() => upstream.connections - before === forwarded, "the forwarded cancels to reach upstream", 5000);
    await sleep(200);
    assert.equal(upstream.connections - before, forwarded, "dropped cancels never reach the upstream");
    target.socket.destroy();
    await waitFor(() => proxy.sessions.length === 0, "every cancel connection to be closed");
  });
});
