/**
 * After a failed login (pgrelay's own 28P01 in auth.mode scram, or the server's FATAL relayed), a client
 * that keeps sending megabytes: pgrelay reads nothing more, and the connection is gone within about a
 * second, with TLS terminate and in plaintext. Bytes the client manages to hand to the kernel stay bounded
 * (socket buffers), where before pgrelay read and buffered all of them.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { connect as connectTls, type ConnectionOptions } from "node:tls";
import { after, before, describe, it } from "node:test";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { formatScramVerifier } from "../../src/auth/scram_verifier.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import type { StartProxyOptions } from "../../mod.ts";
import { makeTestPki, type TestPki } from "../support/certs.ts";
import { type FakeUpstream, refuseLogin, startFakeUpstream } from "../support/fake_upstream.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { BackendError, RawClient } from "../support/raw_client.ts";
import { sslRequest } from "../support/frontend_frames.ts";
import { sleep, waitFor } from "../support/wait.ts";

const pem = (text: string) => new TextEncoder().encode(text);
/** The bound is one second; the margin is for a loaded test machine. */
const GONE_WITHIN_MS = 3000;
const ACCEPTED_BOUND = 16 * 1024 * 1024;

/**
 * Writes `chunkBytes` chunks (waiting `gapMs` between them) until the socket closes or `maxMs` pass; says how
 * long it stayed open and how many bytes the kernel took.
 */
async function flood(socket: Socket, maxMs: number, chunkBytes: number, gapMs: number): Promise<{ openMs: number; accepted: number }> {
  const started = performance.now();
  let accepted = 0;
  let closed = socket.destroyed;
  const whenClosed = new Promise<void>((resolve) => {
    if (closed) resolve();
    socket.once("close", () => {
      closed = true;
      resolve();
    });
  });
  socket.on("error", () => {});
  const chunk = new Uint8Array(chunkBytes).fill(0x51);
  while (!closed && performance.now() - started < maxMs) {
    const flushed = socket.write(chunk, (error) => {
      if (!error) accepted += chunk.length;
    });
    if (!flushed) await Promise.race([new Promise((resolve) => socket.once("drain", resolve)), whenClosed, sleep(20)]);
    if (gapMs > 0) await Promise.race([whenClosed, sleep(gapMs)]);
  }
  return { openMs: closed ? performance.now() - started : Infinity, accepted };
}

/**
 * A client that does not close when pgrelay does (allowHalfOpen: a FIN from pgrelay does not end it), in
 * plaintext or TLS after SSLRequest when `ca` is given.
 */
async function open(port: number, ca?: string): Promise<Socket> {
  const raw: Socket = await new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true }, () => resolve(socket));
    socket.once("error", reject);
  });
  if (ca === undefined) return raw;
  const answer = await new Promise<number>((resolve) => {
    raw.once("data", (chunk: Uint8Array) => resolve(chunk[0]!));
    raw.write(sslRequest());
  });
  assert.equal(String.fromCharCode(answer), "S");
  return await new Promise((resolve, reject) => {
    // allowHalfOpen is a net.Socket option that tls.connect passes on but does not declare.
    const options: ConnectionOptions = { socket: raw, ca, servername: "localhost", ...{ allowHalfOpen: true } };
    const secure = connectTls(options, () => resolve(secure));
    secure.once("error", reject);
  });
}

describe("after a failed login pgrelay reads nothing more", () => {
  let pki: TestPki;
  let upstream: FakeUpstream;
  const proxies: Record<string, Proxy> = {};

  before(async () => {
    pki = await makeTestPki();
    upstream = await startFakeUpstream(refuseLogin);
    const verifier = await makeScramVerifier("right", Uint8Array.from({ length: 16 }, (_, i) => i), 4096);
    const scram: StartProxyOptions = { authentication: { mode: "scram", users: new Map([["alice", formatScramVerifier(verifier)]]) } };
    const terminate: StartProxyOptions = {
      clientEncryption: { mode: "terminate", require: false, server: { cert: pem(pki.proxy.certPem), key: pem(pki.proxy.keyPem) } },
    };
    for (const [name, options] of Object.entries({
      "scram, TLS terminate": { ...scram, ...terminate },
      "scram, plaintext": scram,
      "relay, TLS terminate": terminate,
      "relay, plaintext": {},
    })) {
      proxies[name] = await startTestProxy(upstream, options);
    }
  });
  after(async () => {
    await Promise.all(Object.values(proxies).map((proxy) => proxy.close()));
    await upstream?.close();
  });

  const cases = [
    ["megabytes", 1 << 20, 0],
    ["a trickle of 100 bytes every 50 ms", 100, 50],
  ] as const;
  for (const name of ["scram, TLS terminate", "scram, plaintext", "relay, TLS terminate", "relay, plaintext"]) for (const [what, chunkBytes, gapMs] of cases) {
    it(`${name}: a wrong password, then ${what}: the connection is gone within a second`, async () => {
      const proxy = proxies[name]!;
      const port = proxy.address.port;
      const socket = await open(port, name.includes("TLS") ? pki.ca.certPem : undefined);
      const client = RawClient.over(socket);
      client.startup({ user: "alice", database: "app" });
      const error = await client.authenticate("wrong").then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof BackendError, String(error));
      assert.equal(error.code, "28P01");
      const { openMs, accepted } = await flood(socket, 10_000, chunkBytes, gapMs);
      assert.ok(openMs < GONE_WITHIN_MS, `still open ${openMs} ms after the FATAL`);
      assert.ok(accepted < ACCEPTED_BOUND, `the client handed over ${accepted} bytes`);
      await waitFor(() => proxy.sessions.length === 0, "the session to end", 5000);
    });
  }
});
