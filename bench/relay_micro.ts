/**
 * In-process micro-benchmark of pgrelay's relay path (no sockets): what one pgbench -S transaction costs in
 * the relay pumps, frame scanners, backend observer, query timer and metrics, against a do-nothing forwarder
 * and against the pumps without scanning (the bare relay). Deterministic enough to compare two versions of
 * the relay code; it does not measure the runtime's I/O, which dominates real CPU per transaction.
 *   node_modules/.bin/bun bench/relay_micro.ts   |   node_modules/.bin/deno run -A bench/relay_micro.ts
 * Environment: MICRO_TX (transactions per sample, default 1,000,000), MICRO_SAMPLES (default 7; the
 * fastest sample counts), MICRO_WRITES ("sync": every write is taken whole, as on Bun; "async": every write
 * queues and drains later, as on Deno; default both).
 */
import process from "node:process";
import { BACKEND, FRONTEND } from "../src/protocol/codes.ts";
import { encodeFrame } from "../src/protocol/encode_frame.ts";
import { FrameScanner } from "../src/protocol/frame_scanner.ts";
import { BACKEND_CAPTURES, type BackendEvents, BackendObserver } from "../src/backend/backend_observer.ts";
import { ServerFacts } from "../src/backend/server_facts.ts";
import { QueryTimer } from "../src/core/query_timer.ts";
import { RelayPump } from "../src/core/relay_pump.ts";
import { SessionContext } from "../src/core/session_context.ts";
import type { RelaySocket, SocketEvents } from "../src/core/socket.ts";
import { ProxyMetrics } from "../src/metrics/proxy_metrics.ts";

const TX = Number(process.env["MICRO_TX"] ?? 1_000_000);
const SAMPLES = Number(process.env["MICRO_SAMPLES"] ?? 7);
const MODES = (process.env["MICRO_WRITES"] ?? "sync,async").split(",") as ("sync" | "async")[];
/** Which relays to measure (each best in a process of its own: JIT state carries over between cases). */
const CASES = (process.env["MICRO_CASES"] ?? "direct,bare,pgrelay,pgrelay-hold").split(",");

const text = new TextEncoder();
const cstring = (s: string) => text.encode(`${s}\0`);
const int16 = (n: number) => new Uint8Array([(n >> 8) & 255, n & 255]);
const int32 = (n: number) => new Uint8Array([(n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255]);
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** What pgbench -S sends per transaction (simple protocol) and what PostgreSQL answers, one read each. */
const CLIENT_CHUNK = encodeFrame(FRONTEND.QUERY, cstring("SELECT abalance FROM pgbench_accounts WHERE aid = 123456;"));
const SERVER_CHUNK = concat(
  encodeFrame(
    BACKEND.ROW_DESCRIPTION,
    int16(1),
    cstring("abalance"),
    int32(16397),
    int16(3),
    int32(23),
    int16(4),
    int32(-1),
    int16(0),
  ),
  encodeFrame(BACKEND.DATA_ROW, int16(1), int32(1), text.encode("0")),
  encodeFrame(BACKEND.COMMAND_COMPLETE, cstring("SELECT 1")),
  encodeFrame(BACKEND.READY_FOR_QUERY, new Uint8Array([0x49])),
);

/** A socket that takes every write: whole at once ("sync") or queued until `flush` ("async", then drain). */
class FakeSocket implements RelaySocket {
  readonly remoteAddress = { hostname: "127.0.0.1", port: 1 };
  readonly pendingBytes = 0;
  events: SocketEvents | undefined;
  bytes = 0;
  queued = false;
  paused = false;
  constructor(readonly mode: "sync" | "async") {}
  listen(events: SocketEvents): void {
    this.events = events;
  }
  write(bytes: Uint8Array): boolean {
    this.bytes += bytes.length;
    if (this.mode === "sync") return true;
    this.queued = true;
    return false;
  }
  /** The async write completed: drain. */
  flush(): void {
    if (!this.queued) return;
    this.queued = false;
    this.events?.drain();
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  end(): void {}
  destroy(): void {}
}

interface Relay {
  client: FakeSocket;
  server: FakeSocket;
  /** Delivers one client chunk and one server chunk. */
  transaction(): void;
}

function wire(mode: "sync" | "async", up: (c: Uint8Array) => void, down: (c: Uint8Array) => void, drains: { up: () => void; down: () => void }): Relay {
  const client = new FakeSocket(mode);
  const server = new FakeSocket(mode);
  client.listen({ data: up, drain: drains.down, close() {} });
  server.listen({ data: down, drain: drains.up, close() {} });
  return {
    client,
    server,
    transaction() {
      client.events!.data(CLIENT_CHUNK);
      server.flush();
      server.events!.data(SERVER_CHUNK);
      client.flush();
    },
  };
}

/** The do-nothing forwarder: write, and pause/resume on backpressure. */
function direct(mode: "sync" | "async"): Relay {
  const up = (c: Uint8Array) => {
    if (!relay.server.write(c)) relay.client.pause();
  };
  const down = (c: Uint8Array) => {
    if (!relay.client.write(c)) relay.server.pause();
  };
  const relay: Relay = wire(mode, up, down, { up: () => relay.client.resume(), down: () => relay.server.resume() });
  return relay;
}

function counters() {
  return { bytes: 0, stalls: 0, stallSeconds: 0 };
}

/** pgrelay's pumps without scanners (bench/bare_relay.ts). */
function bare(mode: "sync" | "async"): Relay {
  const client = new FakeSocket(mode);
  const server = new FakeSocket(mode);
  const toServer = new RelayPump(client, server, null, () => {}, counters());
  const toClient = new RelayPump(server, client, null, () => {}, counters());
  return rewire(client, server, toServer, toClient);
}

function rewire(client: FakeSocket, server: FakeSocket, toServer: RelayPump, toClient: RelayPump): Relay {
  client.listen({ data: (c) => toServer.forward(c), drain: () => toClient.drained(), close() {} });
  server.listen({ data: (c) => toClient.forward(c), drain: () => toServer.drained(), close() {} });
  return {
    client,
    server,
    transaction() {
      client.events!.data(CLIENT_CHUNK);
      server.flush();
      server.events!.data(SERVER_CHUNK);
      client.flush();
    },
  };
}

/** The scanners, observer, timer and metrics wired as src/frontend/frontend.ts wires them (audit off). */
function pgrelay(mode: "sync" | "async", issueCancelKey: boolean): Relay {
  const client = new FakeSocket(mode);
  const server = new FakeSocket(mode);
  const context = new SessionContext("micro", { hostname: "127.0.0.1", port: 1 });
  context.phase = "ready";
  const facts = new ServerFacts({ hostname: "127.0.0.1", port: 2 });
  facts.ready = true;
  facts.transactionStatus = "idle";
  context.server = facts;
  const metrics = new ProxyMetrics();
  const timer = new QueryTimer((seconds) => metrics.queryFinished(seconds), () => metrics.queryTrackingOverflow());
  let endReason: string | undefined;
  const frontend = new FrameScanner({
    frame: (type) => {
      context.framesFromClient++;
      metrics.frontendMessages[type]!++;
      timer.frontend(type);
      if (type === FRONTEND.TERMINATE) endReason ??= "client_closed";
    },
    message: () => {},
  }, { maxBodyBytes: 1 << 30, capture: [], peer: "client" });
  const events: BackendEvents = {
    frame: (type) => {
      context.framesFromServer++;
      metrics.backendMessages[type]!++;
      timer.backend(type);
    },
    ready: () => {},
    transactionEnded: (kind) => metrics.transactionEnded(kind),
    saslMechanisms: () => {},
    error: () => {},
    backendKey: () => {},
  };
  const backend = new FrameScanner(new BackendObserver(facts, events), {
    maxBodyBytes: 1 << 30,
    capture: BACKEND_CAPTURES,
    peer: "server",
    ...(issueCancelKey ? { whole: [BACKEND.BACKEND_KEY_DATA] } : {}),
  });
  const toServer = new RelayPump(client, server, frontend, () => {}, context.fromClient);
  const toClient = new RelayPump(server, client, backend, () => {}, context.fromServer, 0);
  const relay = rewire(client, server, toServer, toClient);
  return {
    ...relay,
    transaction() {
      relay.transaction();
      if (endReason !== undefined) throw new Error("unexpected Terminate");
    },
  };
}

function measure(relay: Relay): number {
  let best = Infinity;
  for (let s = 0; s < SAMPLES; s++) {
    const started = performance.now();
    for (let i = 0; i < TX; i++) relay.transaction();
    best = Math.min(best, (performance.now() - started) * 1e6 / TX);
  }
  const expected = SAMPLES * TX;
  if (relay.server.bytes !== expected * CLIENT_CHUNK.length || relay.client.bytes !== expected * SERVER_CHUNK.length) {
    throw new Error(`bytes lost: ${relay.server.bytes} / ${relay.client.bytes}`);
  }
  return best;
}

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
console.log(`relay_micro on ${runtime}: ns per pgbench -S transaction (1 client chunk, 1 server chunk of 4 frames), fastest of ${SAMPLES} × ${TX}`);
for (const mode of MODES) {
  const all: Record<string, [string, () => Relay]> = {
    direct: ["do-nothing forwarder", () => direct(mode)],
    bare: ["bare pumps (no scanning)", () => bare(mode)],
    pgrelay: ["pgrelay (scanners, observer, timer, metrics)", () => pgrelay(mode, false)],
    "pgrelay-hold": ["pgrelay + BackendKeyData hold", () => pgrelay(mode, true)],
  };
  for (const name of CASES) {
    const [label, make] = all[name] ?? [];
    if (!label || !make) throw new Error(`unknown case ${JSON.stringify(name)}`);
    console.log(`  ${mode.padEnd(5)} ${label.padEnd(48)} ${measure(make()).toFixed(1).padStart(7)} ns`);
  }
}
