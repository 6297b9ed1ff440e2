/**
 * tls.mode terminate: a client that sends SSLRequest and then closes, resets or goes silent. A close or
 * reset during pgrelay's TLS handshake frees the session at once (well before startup_timeout); a silent
 * client is cut off at startup_timeout without a plaintext byte after the `S`, and its session is gone.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Proxy } from "../../src/core/proxy.ts";
import { ProxyMetrics } from "../../src/metrics/proxy_metrics.ts";
import { makeTestPki, type TestPki } from "../support/certs.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake_upstream.ts";
import { sslRequest } from "../support/frontend_frames.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { waitFor } from "../support/wait.ts";

const pem = (text: string) => new TextEncoder().encode(text);
const CLIENTS = 30;

/** Sends SSLRequest, reads the answer, then does `then`; resolves with every byte received once closed. */
function sslThen(port: number, then: "close" | "reset" | "silent"): Promise<{ received: number[]; socket: Socket; closed: Promise<number[]> }> {
  return new Promise((resolve, reject) => {
    const received: number[] = [];
    const socket = connect(port, "127.0.0.1", () => socket.write(sslRequest()));
    const closed = new Promise<number[]>((done) => socket.once("close", () => done(received)));
    socket.on("error", (error) => received.length === 0 && reject(error));
    socket.on("data", (chunk: Uint8Array) => {
      const first = received.length === 0;
      received.push(...chunk);
      if (!first) return;
      if (then === "close") socket.end();
      if (then === "reset") socket.resetAndDestroy();
      resolve({ received, socket, closed });
    });
  });
}

describe("TLS terminate: handshakes are reaped", () => {
  let pki: TestPki;
  let upstream: FakeUpstream;
  const proxies: Proxy[] = [];
  const start = async (startupTimeoutMs: number, metrics = new ProxyMetrics()) => {
    const proxy = await startTestProxy(upstream, {
      startupTimeoutMs,
      metrics,
      clientEncryption: { mode: "terminate", require: false, server: { cert: pem(pki.proxy.certPem), key: pem(pki.proxy.keyPem) } },
    });
    proxies.push(proxy);
    return proxy;
  };
  const startupGauge = (metrics: ProxyMetrics, proxy: Proxy) =>
    Number(/^pgrelay_client_connections_active\{phase="startup"\} (\d+)$/m.exec(
      metrics.render({ sessions: proxy.sessions, bufferedBytes: proxy.bufferedBytes, upstreamUp: 1, draining: false }),
    )?.[1]);

  before(async () => {
    pki = await makeTestPki();
    upstream = await startFakeUpstream();
  });
  after(async () => {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await upstream?.close();
  });

  it("a close or a reset after SSLRequest frees the session at once", async () => {
    const metrics = new ProxyMetrics();
    const proxy = await start(120_000, metrics); // far beyond the test: only the close may free them
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => sslThen(proxy.address.port, i % 2 === 0 ? "close" : "reset")),
    );
    for (const client of clients) assert.deepEqual(client.received.slice(0, 1), ["S".charCodeAt(0)]);
    await Promise.all(clients.map((client) => client.closed));
    await waitFor(() => proxy.sessions.length === 0, `0 sessions (${proxy.sessions.length} left)`, 10_000);
    assert.equal(startupGauge(metrics, proxy), 0);
  });

  it("a silent client is cut at startup_timeout with no plaintext after S, and its session is gone", async () => {
    const metrics = new ProxyMetrics();
    const proxy = await start(1000, metrics);
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => sslThen(proxy.address.port, "silent")));
    assert.equal(proxy.sessions.length, CLIENTS);
    const received = await Promise.all(clients.map((client) => client.closed));
    for (const bytes of received) assert.deepEqual(bytes, ["S".charCodeAt(0)], "nothing but the S, then the close");
    await waitFor(() => proxy.sessions.length === 0, `0 sessions (${proxy.sessions.length} left)`, 10_000);
    assert.equal(startupGauge(metrics, proxy), 0);
  });
});
