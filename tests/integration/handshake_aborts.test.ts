/**
 * The handshake lifecycle with real sockets: a thousand connections aborted (FIN or RST) at random points
 * of the handshake leave no session and no connection-limit slot behind, and /metrics says so; two
 * StartupMessages on one connection (in one write or a millisecond apart) in auth.mode scram never lock the
 * real user out. startup_timeout is far beyond the test, so only the aborts themselves may free anything.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { after, before, describe, it } from "node:test";
import type { StartProxyOptions } from "../../mod.ts";
import { AdmissionGate } from "../../src/admission/admission_gate.ts";
import { createAdminHandler } from "../../src/admin/admin_handler.ts";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { formatScramVerifier } from "../../src/auth/scram_verifier.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import { parseLimits } from "../../src/limits/limits_schema.ts";
import { ProxyMetrics } from "../../src/metrics/proxy_metrics.ts";
import { authCode, parseBackendFrames } from "../support/backend_frames.ts";
import { makeTestPki, type TestPki } from "../support/certs.ts";
import { type FakeUpstream, startFakeUpstream, stayQuiet } from "../support/fake_upstream.ts";
import { saslInitialResponse, sslRequest, startupMessage } from "../support/frontend_frames.ts";
import { PasswordScramClient } from "../support/password_scram_client.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { sleep, waitFor } from "../support/wait.ts";

const pem = (text: string) => new TextEncoder().encode(text);
const CONNECTIONS = 1000;
const CONCURRENCY = 25;
const KINDS = ["max_connections", "per_user", "per_database", "per_source"] as const;

interface Target {
  name: string;
  proxy: Proxy;
  gate: AdmissionGate;
  metrics: ProxyMetrics;
  tls: boolean;
  scram: boolean;
}

/** One client connection: what it received, and ways to abort it. */
class Conn {
  readonly raw: Socket;
  stream: Socket;
  readonly received: number[] = [];
  readonly closed: Promise<void>;
  #isClosed = false;

  constructor(raw: Socket) {
    this.raw = raw;
    this.stream = raw;
    raw.on("error", () => {});
    this.closed = new Promise((resolve) => raw.once("close", () => resolve()));
    void this.closed.then(() => this.#isClosed = true);
    raw.on("data", (chunk: Uint8Array) => this.received.push(...chunk));
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const raw = connect(port, "127.0.0.1", () => resolve(new Conn(raw)));
      raw.once("error", reject);
    });
  }

  /** Waits until `n` bytes arrived (or the connection closed, or 5 s passed). */
  async bytes(n: number, from: number[] = this.received): Promise<boolean> {
    const deadline = Date.now() + 5000;
    while (from.length < n && !this.#isClosed && Date.now() < deadline) await sleep(1);
    return from.length >= n;
  }

  /** Starts TLS after the `S`; rejects if the handshake fails (an abort may race it). */
  tls(ca: string): Promise<number[]> {
    const received: number[] = [];
    return new Promise((resolve, reject) => {
      const secure = connectTls({ socket: this.raw, ca, servername: "localhost" }, () => resolve(received));
      secure.on("data", (chunk: Uint8Array) => received.push(...chunk));
      secure.once("error", reject);
      this.stream = secure;
    });
  }

  abort(reset: boolean): void {
    if (reset) this.raw.resetAndDestroy();
    else this.stream.end();
  }
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** One connection to `target`, aborted at a random point of its handshake. */
async function abortedHandshake(target: Target, ca: string): Promise<string> {
  const conn = await Conn.open(target.proxy.address.port);
  const reset = Math.random() < 0.5;
  const points = [
    "at once",
    "mid-startup",
    "after startup",
    "two startups in one write",
    "two startups 1 ms apart",
    ...(target.scram ? ["mid-SCRAM"] : ["waiting for the server"]),
    ...(target.tls ? ["after SSLRequest", "after S", "mid-TLS-handshake"] : []),
  ];
  const point = pick(points);
  const tlsPoints = ["after SSLRequest", "after S", "mid-TLS-handshake"];
  const tlsFirst = target.tls && Math.random() < 0.5 && !tlsPoints.includes(point);
  try {
    let received = conn.received;
    let write = (bytes: Uint8Array) => conn.raw.write(bytes);
    if (tlsPoints.includes(point) || tlsFirst) {
      conn.raw.write(sslRequest());
      if (point === "after SSLRequest") return await finish(conn, reset, point);
      await conn.bytes(1);
      if (point === "after S") return await finish(conn, reset, point);
      const handshake = conn.tls(ca);
      if (point === "mid-TLS-handshake") {
        handshake.catch(() => undefined);
        await sleep(Math.random() * 3);
        return await finish(conn, reset, point);
      }
      received = await handshake;
      const secure = conn.stream;
      write = (bytes) => secure.write(bytes);
    }
    // mallory is unknown to pgrelay: a mock exchange, whose HMAC widens the window of a second StartupMessage.
    const alice = startupMessage({ user: pick(["alice", "mallory"]), database: "app" });
    const bob = startupMessage({ user: "bob", database: "app" });
    switch (point) {
      case "at once":
        break;
      case "mid-startup":
        write(alice.subarray(0, 1 + Math.floor(Math.random() * (alice.length - 2))));
        await sleep(Math.random() * 2);
        break;
      case "after startup":
        write(alice);
        await sleep(Math.random() * 3);
        break;
      case "two startups in one write": {
        const both = new Uint8Array(alice.length + bob.length);
        both.set(alice);
        both.set(bob, alice.length);
        write(both);
        await sleep(Math.random() * 3);
        break;
      }
      case "two startups 1 ms apart":
        write(alice);
        await sleep(Math.random());
        write(bob);
        await sleep(Math.random() * 3);
        break;
      case "mid-SCRAM": {
        write(alice);
        if (!await conn.bytes(9, received)) break; // AuthenticationSASL's header and code, at least
        write(saslInitialResponse("SCRAM-SHA-256", new PasswordScramClient({ password: "right" }).clientFirst()));
        await sleep(Math.random() * 3);
        break;
      }
      case "waiting for the server":
        write(alice);
        await sleep(5 + Math.random() * 5);
        break;
    }
  } catch {
    // An abort racing the handshake; the connection is aborted below all the same.
  }
  return await finish(conn, reset, point);
}

async function finish(conn: Conn, reset: boolean, point: string, tls = conn.stream !== conn.raw): Promise<string> {
  conn.abort(reset);
  await Promise.race([conn.closed, sleep(5000)]);
  if (!reset) conn.raw.destroy(); // pgrelay may keep its side open for up to a second after a FIN
  return `${tls ? "TLS " : ""}${point} (${reset ? "RST" : "FIN"})`;
}

describe("handshake aborts leave nothing behind", () => {
  let pki: TestPki;
  let upstream: FakeUpstream;
  let users: Map<string, string>;
  const targets: Target[] = [];
  const started: Proxy[] = [];

  const start = async (name: string, tls: boolean, scram: boolean, limits: unknown): Promise<Target> => {
    const gate = new AdmissionGate({ limits: parseLimits(limits) });
    const metrics = new ProxyMetrics();
    const options: StartProxyOptions = {
      admission: gate,
      metrics,
      startupTimeoutMs: 120_000,
      ...(scram ? { authentication: { mode: "scram", users } } : {}),
      ...(tls ? { clientEncryption: { mode: "terminate", require: false, server: { cert: pem(pki.proxy.certPem), key: pem(pki.proxy.keyPem) } } } : {}),
    };
    const proxy = await startTestProxy(upstream, options);
    started.push(proxy);
    return { name, proxy, gate, metrics, tls, scram };
  };

  /** /metrics as the admin endpoint serves it. */
  const scrape = async (target: Target) => {
    const handler = createAdminHandler({ proxy: target.proxy, metrics: target.metrics, admission: target.gate });
    return await (await handler(new Request("http://admin/metrics"))).text();
  };
  const sample = (text: string, series: string) =>
    Number(new RegExp(`^${series.replace(/[{}]/g, "\\$&")} (\\d+)$`, "m").exec(text)?.[1]);

  before(async () => {
    pki = await makeTestPki();
    upstream = await startFakeUpstream(stayQuiet);
    const verifier = await makeScramVerifier("right", Uint8Array.from({ length: 16 }, (_, i) => i), 4096);
    users = new Map([["alice", formatScramVerifier(verifier)], ["bob", formatScramVerifier(verifier)]]);
  });
  after(async () => {
    await Promise.all(started.map((proxy) => proxy.close()));
    await upstream?.close();
  });

  it(`${CONNECTIONS} connections aborted at random points: every session and every slot is freed`, async () => {
    const limits = { per_user: 5 }; // some are admitted, some refused: both paths run
    targets.push(
      await start("scram, TLS terminate", true, true, limits),
      await start("relay, TLS terminate", true, false, limits),
      await start("scram, plaintext", false, true, limits),
      await start("relay, plaintext", false, false, limits),
    );
    const seen = new Map<string, number>();
    let peakSlots = 0;
    const sampler = setInterval(() => {
      for (const target of targets) peakSlots = Math.max(peakSlots, target.gate.admitted);
    }, 2);
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < CONNECTIONS) {
        next++;
        const target = pick(targets);
        const point = await abortedHandshake(target, pki.ca.certPem);
        const key = `${target.name}: ${point}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    }));
    clearInterval(sampler);
    assert.ok(peakSlots > 0, "sessions were admitted along the way");
    for (const target of targets) {
      await waitFor(
        () => target.proxy.sessions.length === 0 && target.gate.admitted === 0,
        `${target.name}: 0 sessions and 0 admitted (${target.proxy.sessions.length} sessions in phases ${
          target.proxy.sessions.map((s) => s.phase).join(",")
        }, ${target.gate.admitted} admitted)`,
        15_000,
      );
      assert.deepEqual(target.gate.slotsInUse(), { max_connections: 0, per_user: 0, per_database: 0, per_source: 0 }, target.name);
      const text = await scrape(target);
      for (const limit of KINDS) assert.equal(sample(text, `pgrelay_limit_slots_in_use{limit="${limit}"}`), 0, `${target.name}: ${limit}`);
      for (const phase of ["startup", "connecting", "authenticating", "ready"]) {
        assert.equal(sample(text, `pgrelay_client_connections_active{phase="${phase}"}`), 0, `${target.name}: ${phase}`);
      }
    }
    assert.ok(seen.size > 20, `abort points covered: ${[...seen.keys()].join("; ")}`);
  });

  it("auth.mode scram, per_user 1: two StartupMessages per connection never lock the real user out", async () => {
    // The windows where pgrelay awaits before it reads the client again: the mock exchange's HMAC (a user
    // it cannot authenticate), and the hash of its certificate (TLS, SCRAM-SHA-256-PLUS).
    const cases = [
      { target: await start("scram race, plaintext", false, true, { per_user: 1 }), user: "mallory" },
      { target: await start("scram race, TLS", true, true, { per_user: 1 }), user: "alice" },
    ];
    /** A connection as `user`: its stream (TLS when the target has it) and what that stream received. */
    const login = async (target: Target) => {
      const conn = await Conn.open(target.proxy.address.port);
      if (!target.tls) return { conn, received: conn.received };
      conn.raw.write(sslRequest());
      await conn.bytes(1);
      return { conn, received: await conn.tls(pki.ca.certPem) };
    };
    for (const { target, user } of cases) {
      // pgrelay runs in this process, so the gap is at the event loop's mercy: many tries, several gaps.
      for (let i = 0; i < 150; i++) {
        const { conn } = await login(target);
        conn.raw.setNoDelay(true);
        const first = startupMessage({ user, database: "app" });
        const second = startupMessage({ user: "bob", database: "app" });
        if (i % 5 === 0) {
          const both = new Uint8Array(first.length + second.length);
          both.set(first);
          both.set(second, first.length);
          conn.stream.write(both);
        } else {
          conn.stream.write(first);
          await sleep(i % 5 - 1); // 0 to 3 ms
          conn.stream.write(second);
        }
        await sleep(2);
        conn.abort(i % 3 === 0);
        await Promise.race([conn.closed, sleep(3000)]);
        conn.raw.destroy();
      }
      await waitFor(() => target.gate.admitted === 0, `${target.name}: every slot freed`, 10_000);
      // The user again: admitted (AuthenticationSASL), not 53300.
      const { conn, received } = await login(target);
      conn.stream.write(startupMessage({ user, database: "app" }));
      await conn.bytes(9, received);
      const [answer] = parseBackendFrames(new Uint8Array(received));
      assert.equal(answer?.type, "R", `${target.name}: ${user} is answered with ${answer?.type}`);
      assert.equal(authCode(answer!.body), 10, "AuthenticationSASL");
      conn.raw.destroy();
    }
  });
});
