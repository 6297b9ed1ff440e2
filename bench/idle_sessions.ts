/**
 * Memory per idle session: opens IDLE_SESSIONS (default 1000) sessions through pgrelay on Deno and on Bun,
 * each one logged in for real (trust_user), `select 1` answered, then left idle, and prints pgrelay's RSS
 * growth per session. The goal (issue 9): at most 8 KB per idle session on Bun and 16 KB on Deno.
 *
 *   node_modules/.bin/bun bench/idle_sessions.ts        (or: make bench-idle)
 *
 * Environment: IDLE_SESSIONS (sessions per target, default 1000), IDLE_ROUNDS (measurements per target,
 * default 2; the table shows the median). The throw-away PostgreSQL server runs with max_connections above
 * the session count. IDLE_TARGETS (default "pgrelay,pgrelay-tls,bare,raw") and IDLE_RUNTIMES (default "deno,bun") pick
 * the rows. Progress goes to stderr; a markdown table and one JSON line go to stdout.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { makeTestPki, type TestPki } from "../tests/support/certs.ts";
import { freePort } from "../tests/support/free_port.ts";
import { type PostgresCluster, startPostgres } from "../tests/support/postgres.ts";
import { query, startupMessage } from "../tests/support/frontend_frames.ts";
import { untilListening } from "./listening.ts";
import { rssBytes, settledRss } from "./process_memory.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MOD = join(ROOT, "mod.ts");
const DENO = join(ROOT, "node_modules/.bin/deno");
const BUN = join(ROOT, "node_modules/.bin/bun");
const HOST = "127.0.0.1";
const SESSIONS = positiveInt("IDLE_SESSIONS", 1000);
const ROUNDS = positiveInt("IDLE_ROUNDS", 2);
/** Sessions opened at once while filling up. */
const BATCH = 50;
const GOAL_BYTES: Record<Runtime, number> = { bun: 8 * 1024, deno: 16 * 1024 };

type Runtime = "deno" | "bun";
/**
 * `pgrelay`: mod.ts. `bare`: bench/bare_relay.ts (pgrelay's adapters and relay pumps only). `raw`:
 * bench/raw_relay.ts (the runtime's own sockets, no pgrelay code): the floor any relay pays on that runtime.
 */
type Kind = "pgrelay" | "pgrelay-tls" | "bare" | "raw";
const KIND_NAMES: readonly Kind[] = ["pgrelay", "pgrelay-tls", "bare", "raw"];
const KINDS: Kind[] = (process.env.IDLE_TARGETS ?? "pgrelay,pgrelay-tls,bare,raw").split(",").map((k) => {
  if (!(KIND_NAMES as readonly string[]).includes(k)) throw new Error(`IDLE_TARGETS: unknown target ${k}`);
  return k as Kind;
});
const RUNTIMES: Runtime[] = (process.env.IDLE_RUNTIMES ?? "deno,bun").split(",").map((r) => {
  if (r !== "deno" && r !== "bun") throw new Error(`IDLE_RUNTIMES: unknown runtime ${r}`);
  return r;
});
const LABEL: Record<Kind, string> = {
  pgrelay: "pgrelay",
  // `tls.mode: terminate` puts every socket on node:net/node:tls (src/adapters/node.ts); these clients stay
  // in plaintext (allowed unless `tls.require`), so the row shows what the node sockets cost an idle session.
  "pgrelay-tls": "pgrelay, TLS mode, plaintext clients",
  bare: "bare relay",
  raw: "runtime-only relay",
};
let pki: TestPki | undefined;

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

function progress(message: string): void {
  process.stderr.write(`[idle ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Proxy {
  child: ChildProcess;
  port: number;
  output: string[];
}

async function startProxy(kind: Kind, runtime: Runtime, upstreamPort: number): Promise<Proxy> {
  const port = await freePort();
  const script = kind.startsWith("pgrelay") ? MOD : join(ROOT, "bench", `${kind}_relay.ts`);
  const flags = kind.startsWith("pgrelay")
    ? ["--listen", `${HOST}:${port}`, "--upstream", `${HOST}:${upstreamPort}`, "--log-level", "warn"]
    : [String(port), String(upstreamPort)];
  if (kind === "pgrelay-tls") {
    pki ??= await makeTestPki();
    flags.push("--tls-mode", "terminate", "--tls-cert", pki.proxy.certPath, "--tls-key", pki.proxy.keyPath);
  }
  const [command, args] = runtime === "deno" ? [DENO, ["run", "-A", script, ...flags]] : [BUN, [script, ...flags]];
  const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  const output: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => output.push(...chunk.split("\n").filter(Boolean)));
  await untilListening(child, port, `${kind} on ${runtime}`, output);
  return { child, port, output };
}


/**
 * Opens one session: StartupMessage as `user`, waits for ReadyForQuery, runs `select 1`, waits for its
 * ReadyForQuery, and resolves with the socket left open and idle.
 */
function idleSession(port: number, user: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, HOST);
    let ready = 0;
    let tail = new Uint8Array(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("session not ready within 30 s"));
    }, 30_000);
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("connect", () => socket.write(startupMessage({ user, database: "postgres" })));
    socket.on("data", (chunk: Uint8Array) => {
      // ReadyForQuery ('Z', length 5, status) ends every answer; an ErrorResponse fails the session.
      const joined = new Uint8Array(tail.length + chunk.length);
      joined.set(tail);
      joined.set(chunk, tail.length);
      if (ready === 0 && joined[0] === 0x45) {
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(`server error: ${new TextDecoder().decode(joined)}`));
        return;
      }
      tail = joined.subarray(Math.max(0, joined.length - 6));
      if (!(tail.length === 6 && tail[0] === 0x5a && tail[4] === 5)) return;
      tail = new Uint8Array(0);
      ready++;
      if (ready === 1) socket.write(query("select 1"));
      else {
        clearTimeout(timer);
        socket.removeAllListeners("data");
        resolve(socket);
      }
    });
  });
}

async function closeAll(sockets: Socket[]): Promise<void> {
  await Promise.all(sockets.map((socket) =>
    new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.end();
    })
  ));
}

async function openMany(port: number, user: string, count: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  while (sockets.length < count) {
    const batch = Math.min(BATCH, count - sockets.length);
    sockets.push(...await Promise.all(Array.from({ length: batch }, () => idleSession(port, user))));
  }
  return sockets;
}

interface Measurement {
  kind: Kind;
  runtime: Runtime;
  round: number;
  baselineBytes: number;
  idleBytes: number;
  perSessionBytes: number;
  afterCloseBytes: number;
}

async function measure(kind: Kind, runtime: Runtime, cluster: PostgresCluster, round: number): Promise<Measurement> {
  const proxy = await startProxy(kind, runtime, cluster.port);
  const pid = proxy.child.pid!;
  const user = cluster.users.trust.user;
  try {
    // Warm-up: the code paths of a session are compiled and the first allocations of each kind are made.
    await closeAll(await openMany(proxy.port, user, 100));
    const baselineBytes = await settledRss(pid);
    const sockets = await openMany(proxy.port, user, SESSIONS);
    const idleBytes = await settledRss(pid);
    await closeAll(sockets);
    const afterCloseBytes = await settledRss(pid);
    const perSessionBytes = (idleBytes - baselineBytes) / SESSIONS;
    progress(
      `${LABEL[kind]} (${runtime}) round ${round}: ${(perSessionBytes / 1024).toFixed(1)} KiB per idle session ` +
        `(RSS ${(baselineBytes / 1048576).toFixed(1)} → ${(idleBytes / 1048576).toFixed(1)} MiB, ` +
        `${(afterCloseBytes / 1048576).toFixed(1)} MiB after closing)`,
    );
    return { kind, runtime, round, baselineBytes, idleBytes, perSessionBytes, afterCloseBytes };
  } finally {
    proxy.child.kill("SIGKILL");
    await new Promise((resolve) => proxy.child.exitCode !== null ? resolve(null) : proxy.child.once("exit", resolve));
    if (proxy.output.length > 0) progress(`${LABEL[kind]} on ${runtime} printed:\n${proxy.output.slice(0, 20).join("\n")}`);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  progress(`PostgreSQL with max_connections ${SESSIONS + 100}`);
  const cluster = await startPostgres({ conf: { max_connections: String(SESSIONS + 100) } });
  const results: Measurement[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const kind of KINDS) {
        for (const runtime of round % 2 === 1 ? RUNTIMES : [...RUNTIMES].reverse()) {
          results.push(await measure(kind, runtime, cluster, round));
        }
      }
    }
  } finally {
    await cluster.stop();
    await pki?.cleanup().catch(() => {});
  }
  const lines = [
    `| target | idle sessions | RSS per idle session (median of ${ROUNDS}) | goal | verdict | every round |`,
    "| ------ | ------------: | ---------------: | ---: | ------- | ----------- |",
  ];
  const summary: Record<string, unknown>[] = [];
  for (const kind of KINDS) {
    for (const runtime of RUNTIMES) {
      const mine = results.filter((r) => r.runtime === runtime && r.kind === kind);
      const per = median(mine.map((r) => r.perSessionBytes));
      const goal = GOAL_BYTES[runtime];
      // Only pgrelay itself has a goal; the reference rows show the floor it is read against.
      const judged = kind === "pgrelay";
      summary.push({ kind, runtime, perSessionBytes: Math.round(per), ...(judged ? { goalBytes: goal } : {}), rounds: mine });
      lines.push(
        `| ${LABEL[kind]} (${runtime === "deno" ? "Deno" : "Bun"}) | ${SESSIONS} | ${kib(per)} | ${
          judged ? `${goal / 1024} KiB` : ""
        } | ${judged ? (per <= goal ? "PASS" : "MISS") : ""} | ${mine.map((r) => kib(r.perSessionBytes)).join(", ")} |`,
      );
    }
  }
  process.stdout.write(`${lines.join("\n")}\n${JSON.stringify({ sessions: SESSIONS, results: summary })}\n`);
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

await main();
process.exit(0);
