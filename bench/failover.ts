/**
 * Failover benchmark (issue 10): a PostgreSQL primary with a streaming standby, pgrelay in front of both (one
 * cluster with `health:`, a route `target: primary`), FAILOVER_CLIENTS (default 20) busy clients looping short
 * write transactions through pgrelay, then `pg_ctl stop -m immediate` of the primary and `pg_ctl promote` of the
 * standby. It measures the time from promotion (and from the stop) to the first successful write through pgrelay
 * and the errors each client sees during the failover. One fresh pair and one pgrelay process per runtime
 * (Deno, then Bun). Not a test: it prints numbers and checks nothing beyond "the failover completed".
 *
 *   node_modules/.bin/bun bench/failover.ts      (or: make bench-failover; also: deno run -A bench/failover.ts)
 *
 * Environment: FAILOVER_CLIENTS (default 20), FAILOVER_RUNTIMES (default "deno,bun"), FAILOVER_INTERVAL
 * (health interval, default "500ms"), FAILOVER_WARMUP_MS (steady writing before the stop, default 3000),
 * FAILOVER_WAIT_MS (how long the clients may take to write again after the promotion, default 30000).
 * Progress goes to stderr; a markdown table, notes and one JSON line go to stdout. See bench/README.md.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freePort } from "../tests/support/free_port.ts";
import { type ReplicatedPair, startReplicatedPair } from "../tests/support/replication.ts";
import { untilListening } from "./listening.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MOD = join(ROOT, "mod.ts");
const BINARIES = { deno: join(ROOT, "node_modules/.bin/deno"), bun: join(ROOT, "node_modules/.bin/bun") } as const;
const HOST = "127.0.0.1";
const CLIENTS = positiveInt("FAILOVER_CLIENTS", 20);
const WARMUP_MS = positiveInt("FAILOVER_WARMUP_MS", 3000);
const WAIT_MS = positiveInt("FAILOVER_WAIT_MS", 30_000);
const INTERVAL = process.env.FAILOVER_INTERVAL || "500ms";
/** Pause before a client reconnects after an error (a refused connect must not become a busy loop). */
const RECONNECT_PAUSE_MS = 20;
/** pg's connect and query timeouts: bound every step of a client loop. */
const CLIENT_TIMEOUT_MS = 15_000;

type Runtime = keyof typeof BINARIES;
const RUNTIMES: Runtime[] = (process.env.FAILOVER_RUNTIMES ?? "deno,bun").split(",").map((r) => {
  if (r !== "deno" && r !== "bun") throw new Error(`FAILOVER_RUNTIMES: unknown runtime ${r}`);
  return r;
});

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

function progress(message: string): void {
  process.stderr.write(`[failover ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------
// Cleanup: pgrelay, the pair and the temp dir go on a normal exit, an error and Ctrl-C

let relayChild: ChildProcess | undefined;
let livePair: ReplicatedPair | undefined;
let liveDir: string | undefined;
let cleaningUp: Promise<void> | undefined;

function killRelaySync(signal: NodeJS.Signals): void {
  const child = relayChild;
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, signal);
    } catch {
      // already gone
    }
  }
}

async function cleanup(): Promise<void> {
  cleaningUp ??= (async () => {
    const child = relayChild;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      killRelaySync("SIGTERM");
      await Promise.race([exited, sleep(3000)]);
      killRelaySync("SIGKILL");
    }
    relayChild = undefined;
    await livePair?.stop().catch((err) => progress(`stopping PostgreSQL failed: ${err}`));
    livePair = undefined;
    if (liveDir !== undefined) rmSync(liveDir, { recursive: true, force: true });
    liveDir = undefined;
  })();
  try {
    await cleaningUp;
  } finally {
    cleaningUp = undefined;
  }
}

// The clusters have their own exit hook and watchdog (tests/support/orphan_guard.ts).
process.on("exit", () => {
  killRelaySync("SIGKILL");
  if (liveDir !== undefined) rmSync(liveDir, { recursive: true, force: true });
});
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.on(signal, () => {
    progress(`${signal}: stopping pgrelay and PostgreSQL`);
    void cleanup().finally(() => process.exit(code));
  });
}

// ---------------------------------------------------------------------------------------------------------
// pgrelay

interface Relay {
  child: ChildProcess;
  port: number;
  output: string[];
}

function config(pair: ReplicatedPair, dir: string): string {
  return `
log_level: warn
auth: { file: ${JSON.stringify(join(dir, "userlist.txt"))} }
routing: { hold_timeout: 10s }
clusters:
  main:
    hosts: ["${HOST}:${pair.primary.port}", "${HOST}:${pair.standby.port}"]
    health: { interval: ${INTERVAL}, timeout: 1s, user: postgres, database: postgres }
routes:
  - { name: writes, cluster: main, target: primary }
`;
}

async function startRelay(runtime: Runtime, pair: ReplicatedPair, dir: string): Promise<Relay> {
  const { user, password } = pair.primary.users.superuser;
  writeFileSync(join(dir, "userlist.txt"), `"${user}" "${password}"\n`, { mode: 0o600 });
  writeFileSync(join(dir, "pgrelay.yaml"), config(pair, dir), { mode: 0o600 });
  const port = await freePort();
  const flags = ["--config", join(dir, "pgrelay.yaml"), "--listen", `${HOST}:${port}`];
  const args = runtime === "deno" ? ["run", "-A", MOD, ...flags] : [MOD, ...flags];
  const child = spawn(BINARIES[runtime], args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  relayChild = child;
  const output: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => output.push(...chunk.split("\n").filter(Boolean)));
  await untilListening(child, port, `pgrelay on ${runtime}`, output);
  return { child, port, output };
}


// ---------------------------------------------------------------------------------------------------------
// Busy clients

interface ClientError {
  at: number;
  /** The SQLSTATE, or `no SQLSTATE (<node error code or message>)` for a dropped socket. */
  key: string;
  message: string;
}

interface ClientWrite {
  at: number;
  port: number;
  id: string;
}

interface ClientLog {
  writes: ClientWrite[];
  errors: ClientError[];
  connects: number;
}

function errorKey(error: unknown): { key: string; message: string } {
  const e = error as { code?: unknown; message?: unknown };
  const message = String(e?.message ?? error);
  const code = typeof e?.code === "string" ? e.code : undefined;
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) return { key: code, message };
  return { key: `no SQLSTATE (${code ?? message})`, message };
}

/** Loops BEGIN; INSERT ... RETURNING; COMMIT through pgrelay until `running()` is false, reconnecting on error. */
async function busyClient(
  index: number,
  log: ClientLog,
  relayPort: number,
  pair: ReplicatedPair,
  running: () => boolean,
): Promise<void> {
  let client: pg.Client | undefined;
  while (running()) {
    try {
      if (client === undefined) {
        client = new pg.Client({
          host: HOST,
          port: relayPort,
          ...pair.primary.users.superuser,
          database: "postgres",
          application_name: `failover-${index}`,
          connectionTimeoutMillis: CLIENT_TIMEOUT_MS,
          query_timeout: CLIENT_TIMEOUT_MS,
        });
        // A dropped idle connection is also reported by the next query, which is where it is counted.
        client.on("error", () => {});
        log.connects++;
        await client.connect();
      }
      await client.query("BEGIN");
      const result = await client.query<{ id: string; port: number }>(
        "INSERT INTO bench_failover (client) VALUES ($1) RETURNING id::text, inet_server_port() AS port",
        [index],
      );
      await client.query("COMMIT");
      log.writes.push({ at: performance.now(), port: result.rows[0]!.port, id: result.rows[0]!.id });
    } catch (error) {
      log.errors.push({ at: performance.now(), ...errorKey(error) });
      const dead = client;
      client = undefined;
      void dead?.end().catch(() => {});
      await sleep(RECONNECT_PAUSE_MS);
    }
  }
  await client?.end().catch(() => {});
}

// ---------------------------------------------------------------------------------------------------------
// One failover per runtime

interface Result {
  runtime: Runtime;
  clients: number;
  /** pg_ctl promote -w: from its start until it reports the standby promoted. */
  promoteMs: number;
  /** pg_ctl stop -m immediate: from its start until it returned. */
  stopMs: number;
  /** From the start of `pg_ctl promote` to the first write any client committed on the promoted server. */
  promoteToFirstWriteMs: number;
  /** From the start of `pg_ctl stop -m immediate` of the primary to that write. */
  stopToFirstWriteMs: number;
  /** From the start of `pg_ctl promote` until every client had committed on the promoted server. */
  promoteToAllWritingMs: number;
  /** Errors from the stop on, by SQLSTATE, summed over clients. */
  errorsByKey: Record<string, number>;
  errorsTotal: number;
  maxErrorsPerClient: number;
  clientsWithoutError: number;
  /** Errors before the stop (should be 0). */
  errorsBeforeStop: number;
  /** The first and last error after the stop, relative to the start of the stop (ms). */
  errorSpanMs: [number, number] | null;
  /** Distinct error messages with counts. */
  messages: Record<string, number>;
  writesBeforeStop: number;
  writesAfterPromotion: number;
  connects: number;
  /** Writes the old primary acknowledged that the promoted server does not have (asynchronous replication). */
  acknowledgedButLost: number;
  relayOutput: string[];
}

async function failover(runtime: Runtime): Promise<Result> {
  progress(`${runtime}: starting a primary and a streaming standby`);
  const pair = await startReplicatedPair();
  livePair = pair;
  const dir = mkdtempSync(join(tmpdir(), "pgrelay-failover-"));
  liveDir = dir;
  await pair.primary.sql("CREATE TABLE bench_failover (id bigserial PRIMARY KEY, client int NOT NULL)");
  await pair.waitForReplay();
  progress(`${runtime}: primary :${pair.primary.port}, standby :${pair.standby.port}; starting pgrelay`);
  const relay = await startRelay(runtime, pair, dir);
  await firstHealthyWrite(relay.port, pair);

  let running = true;
  const all: ClientLog[] = Array.from({ length: CLIENTS }, () => ({ writes: [], errors: [], connects: 0 }));
  const loops = Promise.all(all.map((log, i) => busyClient(i, log, relay.port, pair, () => running)));
  progress(`${runtime}: ${CLIENTS} clients writing for ${WARMUP_MS} ms`);
  await sleep(WARMUP_MS);

  progress(`${runtime}: pg_ctl stop -m immediate (primary), then pg_ctl promote (standby)`);
  const stopAt = performance.now();
  await pair.primary.stopImmediate();
  const promoteAt = performance.now();
  await pair.standby.promote();
  const promotedAt = performance.now();
  // Bounded wait: until every client has committed on the promoted server, or WAIT_MS.
  const deadline = promotedAt + WAIT_MS;
  while (performance.now() < deadline) {
    if (all.every((log) => log.writes.some((w) => w.at > promoteAt && w.port === pair.standby.port))) break;
    await sleep(50);
  }
  await sleep(1000); // a little steady state on the new primary
  running = false;
  await loops;

  const newWrites = all.map((log) => log.writes.filter((w) => w.at > promoteAt && w.port === pair.standby.port));
  const firsts = newWrites.map((writes) => writes[0]?.at);
  const firstNew = Math.min(...firsts.map((at) => at ?? Infinity));
  const lastFirst = firsts.some((at) => at === undefined) ? Infinity : Math.max(...(firsts as number[]));
  if (!Number.isFinite(firstNew)) throw new Error(`${runtime}: no write reached the promoted server within ${WAIT_MS} ms`);

  const errorsAfter = all.map((log) => log.errors.filter((e) => e.at >= stopAt));
  const errorsByKey: Record<string, number> = {};
  const messages: Record<string, number> = {};
  for (const error of errorsAfter.flat()) {
    errorsByKey[error.key] = (errorsByKey[error.key] ?? 0) + 1;
    const text = `${error.key}: ${error.message.replace(/\(session [^)]*\)/, "(session …)")}`;
    messages[text] = (messages[text] ?? 0) + 1;
  }
  const afterTimes = errorsAfter.flat().map((e) => e.at - stopAt);

  // Writes the old primary acknowledged that the promoted server lacks (lost with asynchronous replication).
  const acked = all.flatMap((log) => log.writes.filter((w) => w.port === pair.primary.port).map((w) => w.id));
  const present = Number(
    await pair.standby.sql(
      acked.length === 0 ? "SELECT 0" : `SELECT count(*) FROM bench_failover WHERE id IN (${acked.join(",")})`,
    ),
  );

  const result: Result = {
    runtime,
    clients: CLIENTS,
    promoteMs: promotedAt - promoteAt,
    stopMs: promoteAt - stopAt,
    promoteToFirstWriteMs: firstNew - promoteAt,
    stopToFirstWriteMs: firstNew - stopAt,
    promoteToAllWritingMs: lastFirst - promoteAt,
    errorsByKey,
    errorsTotal: afterTimes.length,
    maxErrorsPerClient: Math.max(...errorsAfter.map((e) => e.length)),
    clientsWithoutError: errorsAfter.filter((e) => e.length === 0).length,
    errorsBeforeStop: all.reduce((n, log) => n + log.errors.filter((e) => e.at < stopAt).length, 0),
    errorSpanMs: afterTimes.length === 0 ? null : [Math.min(...afterTimes), Math.max(...afterTimes)],
    messages,
    writesBeforeStop: all.reduce((n, log) => n + log.writes.filter((w) => w.at < stopAt).length, 0),
    writesAfterPromotion: newWrites.reduce((n, w) => n + w.length, 0),
    connects: all.reduce((n, log) => n + log.connects, 0),
    acknowledgedButLost: acked.length - present,
    relayOutput: [...relay.output],
  };
  progress(
    `${runtime}: first write ${ms(result.promoteToFirstWriteMs)} after promote (${ms(result.stopToFirstWriteMs)} after ` +
      `stop), ${result.errorsTotal} errors`,
  );
  await cleanup();
  return result;
}

/** Waits until a write through pgrelay lands on the primary: the first health check has passed. */
async function firstHealthyWrite(relayPort: number, pair: ReplicatedPair): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last: unknown;
  while (Date.now() < deadline) {
    const client = new pg.Client({
      host: HOST,
      port: relayPort,
      ...pair.primary.users.superuser,
      database: "postgres",
      connectionTimeoutMillis: CLIENT_TIMEOUT_MS,
    });
    client.on("error", () => {});
    try {
      await client.connect();
      const result = await client.query<{ port: number }>("SELECT inet_server_port() AS port");
      if (result.rows[0]?.port === pair.primary.port) return;
      last = `reached port ${result.rows[0]?.port}`;
    } catch (error) {
      last = error;
    } finally {
      await client.end().catch(() => {});
    }
    await sleep(200);
  }
  throw new Error(`pgrelay did not reach the primary within 30 s: ${last}`);
}

const ms = (value: number) => Number.isFinite(value) ? `${Math.round(value)} ms` : "never";

function table(results: Result[]): string {
  const keys = [...new Set(results.flatMap((r) => Object.keys(r.errorsByKey)))].sort();
  const lines = [
    "| runtime | promote → first write | primary stop → first write | promote → all clients writing | errors by SQLSTATE (sum over clients) | max errors per client | clients with no error |",
    "| ------- | --------------------: | -------------------------: | ----------------------------: | ------------------------------------- | --------------------: | --------------------: |",
  ];
  for (const r of results) {
    const errors = keys.filter((k) => r.errorsByKey[k]).map((k) => `${k}: ${r.errorsByKey[k]}`).join(", ") || "none";
    lines.push(
      `| ${r.runtime === "deno" ? "Deno" : "Bun"} | ${ms(r.promoteToFirstWriteMs)} | ${ms(r.stopToFirstWriteMs)} | ` +
        `${ms(r.promoteToAllWritingMs)} | ${errors} | ${r.maxErrorsPerClient} | ${r.clientsWithoutError} of ${r.clients} |`,
    );
  }
  return lines.join("\n");
}

function notes(results: Result[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const span = r.errorSpanMs === null ? "none" : `${ms(r.errorSpanMs[0])} to ${ms(r.errorSpanMs[1])} after the stop`;
    lines.push(
      `- ${r.runtime}: pg_ctl stop -m immediate took ${ms(r.stopMs)}, pg_ctl promote -w ${ms(r.promoteMs)}; ` +
        `${r.writesBeforeStop} writes before the stop, ${r.writesAfterPromotion} on the promoted server; ` +
        `${r.connects} connects; errors ${span}; ${r.errorsBeforeStop} errors before the stop; ` +
        `${r.acknowledgedButLost} acknowledged writes missing on the promoted server (asynchronous replication).`,
    );
    for (const [message, count] of Object.entries(r.messages).sort((a, b) => b[1] - a[1])) {
      lines.push(`  - ${count} × ${message}`);
    }
    if (r.relayOutput.length > 0) {
      const events: Record<string, number> = {};
      for (const line of r.relayOutput) {
        const event = /"level":"(\w+)","event":"(\w+)"/.exec(line);
        const name = event ? `${event[1]} ${event[2]}` : `(not a log line) ${line.slice(0, 200)}`;
        events[name] = (events[name] ?? 0) + 1;
      }
      const list = Object.entries(events).map(([name, count]) => `${count} × ${name}`).join(", ");
      lines.push(`  - pgrelay's log at warn level: ${list}`);
    }
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const results: Result[] = [];
  const loadBefore = loadavg()[0]!;
  try {
    for (const runtime of RUNTIMES) results.push(await failover(runtime));
  } finally {
    await cleanup();
  }
  process.stdout.write(
    `${table(results)}\n\n` +
      `${CLIENTS} clients, health interval ${INTERVAL}, reconnect pause ${RECONNECT_PAUSE_MS} ms; "promote" is the start ` +
      "of `pg_ctl promote -w`, \"first write\" the first COMMIT a client saw answered by the promoted server.\n\n" +
      `${notes(results)}\n` +
      `- host load average (1 min): ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end.\n` +
      `${JSON.stringify(results.map(({ relayOutput: _, ...rest }) => rest))}\n`,
  );
}

await main();
process.exit(0);
