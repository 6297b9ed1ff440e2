/**
 * pgrelay benchmark: direct PostgreSQL vs pgrelay on Deno vs pgrelay on Bun vs haproxy (tcp mode), plus
 * client-TLS rows (pgrelay terminating TLS on Deno and on Bun vs PgBouncer in session mode), side by side
 * against ONE throw-away PostgreSQL server started for the run.
 *
 *   node_modules/.bin/bun bench/run.ts          (also: node_modules/.bin/deno run -A bench/run.ts)
 *
 * Environment: BENCH_SECONDS (pgbench -T per target and round, default 15), BENCH_ROUNDS (interleaved
 * rounds, default 2), BENCH_COPY_ROWS (default 400000 rows of 1000 bytes, ~400 MB), BENCH_COPY_RUNS (COPYs
 * per target and round, default 3).
 * Progress goes to stderr (one line per phase); the markdown table and a final JSON line go to stdout.
 * See bench/README.md.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus as osCpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { makeTestPki, type TestPki } from "../tests/support/certs.ts";
import { freePort } from "../tests/support/free_port.ts";
import { postgresAccount } from "../tests/support/pg_os_user.ts";
import { type PostgresCluster, startPostgres } from "../tests/support/postgres.ts";

// ---------------------------------------------------------------------------------------------------------
// Settings

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MOD = join(ROOT, "mod.ts");
const BARE_RELAY = join(ROOT, "bench", "bare_relay.ts");
const RAW_RELAY = join(ROOT, "bench", "raw_relay.ts");
const DENO = join(ROOT, "node_modules/.bin/deno");
const BUN = join(ROOT, "node_modules/.bin/bun");
const HAPROXY = "/usr/sbin/haproxy";
const PGBOUNCER = "/usr/sbin/pgbouncer";
const HOST = "127.0.0.1";

const SECONDS = positiveInt("BENCH_SECONDS", 15);
const ROUNDS = positiveInt("BENCH_ROUNDS", 2);
const COPY_ROWS = positiveInt("BENCH_COPY_ROWS", 400_000);
/** COPY OUT repetitions per target and round (interleaved across targets); the table shows the fastest. */
const COPY_RUNS = positiveInt("BENCH_COPY_RUNS", 3);
const WARMUP_SECONDS = 2;
const CLIENTS = 8;
const THREADS = 2;
const SCALE = 10;
const ROW_BYTES = 1000;
/** Bytes on the wire per COPY row: CopyData 'd' + int32 length + 1000 'x' + '\n'. */
const COPY_WIRE_BYTES = COPY_ROWS * (1 + 4 + ROW_BYTES + 1);
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** Project targets (ratios). */
const GOAL_CPU_VS_HAPROXY: Record<string, number> = { bun: 1.0, deno: 1.2, "audit-deno": 1.4, "audit-bun": 1.4 };
const GOAL_COPY_VS_DIRECT = 1.05;
/** A measurement during which foreign processes (or steal) took more than this share of the host is flagged. */
const NOISE_LIMIT = 0.1;

type TargetName =
  | "direct"
  | "deno"
  | "bun"
  | "bare-deno"
  | "bare-bun"
  | "raw-deno"
  | "raw-bun"
  | "audit-deno"
  | "audit-bun"
  | "haproxy"
  | "tls-deno"
  | "tls-bun"
  | "pgbouncer-tls";
const LABEL: Record<TargetName, string> = {
  direct: "direct",
  deno: "pgrelay (Deno)",
  bun: "pgrelay (Bun)",
  // References: pgrelay's adapters and pumps with no scanning, session or metrics (bench/bare_relay.ts).
  // The gap between a bare row and its pgrelay row is pgrelay's own work; the rest is the runtime's.
  "bare-deno": "bare relay (Deno)",
  "bare-bun": "bare relay (Bun)",
  // The floor: the cheapest backpressured relay written straight on Deno.connect / Bun.listen, with no
  // pgrelay code at all (bench/raw_relay.ts). A target below its ratio is below what the runtime costs.
  "raw-deno": "runtime-only relay (Deno)",
  "raw-bun": "runtime-only relay (Bun)",
  // pgrelay with the audit log writing every query (text, duration, tag, rows) to a file.
  "audit-deno": "pgrelay + audit (Deno)",
  "audit-bun": "pgrelay + audit (Bun)",
  haproxy: "haproxy (tcp)",
  // Client leg TLS (sslmode=require), upstream leg plaintext. Compared with each other, not with the
  // plaintext rows' targets: CPU/tx vs PgBouncer, COPY vs direct (no verdicts, no target is stated).
  "tls-deno": "pgrelay TLS (Deno)",
  "tls-bun": "pgrelay TLS (Bun)",
  "pgbouncer-tls": "pgbouncer TLS (session)",
};
/** Targets whose clients connect with sslmode=require. */
const TLS_TARGETS: ReadonlySet<TargetName> = new Set(["tls-deno", "tls-bun", "pgbouncer-tls"]);
/** The reference for the TLS rows' CPU per transaction. */
const TLS_BASELINE: TargetName = "pgbouncer-tls";

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// Process bookkeeping and cleanup (normal exit, exception, Ctrl-C, SIGTERM)

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let cluster: PostgresCluster | undefined;
let pki: TestPki | undefined;
let cleaningUp: Promise<void> | undefined;
/** Set by SIGINT/SIGTERM: no new measurements start; the signal handler exits once cleanup is done. */
let interrupted: NodeJS.Signals | undefined;

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  // Spawn failures (ENOENT) also arrive as 'error'; callers surface them, this only prevents a crash.
  child.once("error", () => children.delete(child));
  return child;
}

function killAllSync(signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, signal);
      } catch {
        // already gone
      }
    }
  }
}

function cleanup(): Promise<void> {
  cleaningUp ??= (async () => {
    killAllSync("SIGTERM");
    const deadline = Date.now() + 3000;
    while (children.size > 0 && Date.now() < deadline) await sleep(50);
    killAllSync("SIGKILL");
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
    if (cluster !== undefined) await cluster.stop().catch((err) => progress(`cluster stop failed: ${err}`));
    await pki?.cleanup().catch(() => {}); // certs.ts also removes its directory at process exit
  })();
  return cleaningUp;
}

// Synchronous last resort (process.exit, uncaught errors): the cluster has its own exit hook and watchdog.
process.on("exit", () => {
  killAllSync("SIGKILL");
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.on(signal, () => {
    if (interrupted !== undefined) return;
    interrupted = signal;
    progress(`${signal}: stopping proxies and PostgreSQL`);
    void cleanup().finally(() => process.exit(code));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------------------
// Running client tools

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/**
 * libpq environment: nothing inherited that could redirect the tools; no GSS negotiation; no SSL, or for a
 * TLS target sslmode=require with the test CA as root certificate (so a stray ~/.postgresql/root.crt
 * cannot change the outcome; with a root file, libpq's require also verifies the chain).
 */
function clientEnv(tls: boolean): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("PG") && value !== undefined) env[key] = value;
  }
  Object.assign(env, {
    PGSSLMODE: "disable",
    PGGSSENCMODE: "disable",
    PGAPPNAME: "pgrelay-bench",
    LC_ALL: "C",
  });
  if (tls) {
    if (pki === undefined) throw new Error("TLS target without a test PKI");
    Object.assign(env, { PGSSLMODE: "require", PGSSLROOTCERT: pki.ca.certPath });
  }
  return env;
}

function run(command: string, args: string[], timeoutMs: number, tls = false): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (interrupted !== undefined) {
      reject(new Error(`interrupted by ${interrupted}`));
      return;
    }
    const started = performance.now();
    const child = track(spawn(command, args, { env: clientEnv(tls), stdio: ["ignore", "pipe", "pipe"] }));
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${command}: ${err.message}`));
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

async function runChecked(
  command: string,
  args: string[],
  timeoutMs: number,
  tls = false,
): Promise<RunResult> {
  const result = await run(command, args, timeoutMs, tls);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited with ${result.code}\n${result.stdout}${result.stderr}`.trimEnd(),
    );
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// /proc helpers

/** utime + stime of the whole process (all threads), in clock ticks: /proc/<pid>/stat fields 14 and 15. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
  return Number(fields[14 - 3]) + Number(fields[15 - 3]);
}

/** Aggregate CPU counters (busy, total) in ticks from /proc/stat. */
function cpuCounters(): [number, number] {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(
    Number,
  );
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + fields[4]!; // idle + iowait
  return [total - idle, total];
}

/** Share of all cores busy over `ms` before the run (other work on the host makes every number noisier). */
async function hostBusyShare(ms: number): Promise<number> {
  const [busy0, total0] = cpuCounters();
  await sleep(ms);
  const [busy1, total1] = cpuCounters();
  return total1 > total0 ? (busy1 - busy0) / (total1 - total0) : 0;
}

/** A point-in-time view of the host's CPU counters and of the CPU spent by this run's own processes. */
interface HostSnapshot {
  /** user + nice + system ticks of all cores (irq/softirq excluded: not charged to any process). */
  busy: number;
  steal: number;
  total: number;
  /** utime+stime+cutime+cstime of this process, the postmaster and all their live descendants. */
  ours: number;
}

/** How much of the host's capacity went elsewhere during a measurement. */
interface Interference {
  /** Share of all cores used by processes that are not part of this run. */
  otherShare: number;
  /** Share of all cores stolen by the hypervisor. */
  stealShare: number;
}

function hostSnapshot(): HostSnapshot {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const roots = [process.pid];
  const postmaster = cluster === undefined ? NaN : Number.parseInt(
    readFileSync(join(cluster.dataDir, "postmaster.pid"), "utf8").split("\n")[0] ?? "",
    10,
  );
  if (Number.isInteger(postmaster)) roots.push(postmaster);
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const x = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // x[0] is field 3
      parent.set(Number(entry), Number(x[4 - 3]));
      ticks.set(Number(entry), Number(x[14 - 3]) + Number(x[15 - 3]) + Number(x[16 - 3]) + Number(x[17 - 3]));
    } catch {
      // exited meanwhile
    }
  }
  let ours = 0;
  for (const [pid, t] of ticks) {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; hops++) {
      if (roots.includes(p)) {
        ours += t;
        break;
      }
      p = parent.get(p);
    }
  }
  return { busy: f[0]! + f[1]! + f[2]!, steal: f[7]!, total: f.reduce((a, b) => a + b, 0), ours };
}

function interference(a: HostSnapshot, b: HostSnapshot): Interference {
  const total = b.total - a.total;
  if (!(total > 0)) return { otherShare: NaN, stealShare: NaN };
  const other = Math.max(0, b.busy - a.busy - (b.ours - a.ours));
  return { otherShare: round(other / total, 3), stealShare: round((b.steal - a.steal) / total, 3) };
}

/** A line such as VmHWM from /proc/<pid>/status, in KiB. */
function statusKiB(pid: number, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) : NaN;
}

/** Pids of the direct children of every thread of `pid`. */
function childPids(pid: number): number[] {
  const pids: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
    if (text !== "") pids.push(...text.split(/\s+/).map(Number));
  }
  return pids;
}

/** TCP ports in LISTEN state on sockets that `pid` itself holds open. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ["tcp", "tcp6"]) {
    const path = `/proc/${pid}/net/${table}`;
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, "utf8").split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (cols.length < 10 || cols[3] !== "0A" || !inodes.has(cols[9]!)) continue;
      ports.push(Number.parseInt(cols[1]!.split(":")[1]!, 16));
    }
  }
  return ports;
}

// ---------------------------------------------------------------------------------------------------------
// Targets

interface PgbenchRun {
  round: number;
  transactions: number;
  failed: number;
  tps: number;
  latencyMs: number;
  /** Proxy CPU ticks during the run (0 for direct). */
  cpuTicks: number;
  interference: Interference;
}

interface CopyRun {
  round: number;
  seconds: number;
  interference: Interference;
  cpuTicks: number;
}

interface Target {
  name: TargetName;
  port: number;
  /** The proxy process (undefined for direct). */
  child?: ChildProcess;
  pid?: number;
  exe?: string;
  stderrLines: string[];
  pgbench: PgbenchRun[];
  copy: CopyRun[];
  errors: string[];
  peakRssKiB?: number;
  threads?: number;
  /** Clients connect with sslmode=require (client leg TLS; the upstream leg stays plaintext). */
  tls: boolean;
  /** TLS protocol and cipher the smoke test's psql negotiated (TLS targets only). */
  tlsInfo?: string;
  /** Proxy output lines that are routine (start-up/shut-down notices) and not worth reporting. */
  routineOutput?: RegExp;
}

function newTarget(name: TargetName, port: number): Target {
  return { name, port, stderrLines: [], pgbench: [], copy: [], errors: [], tls: TLS_TARGETS.has(name) };
}

/**
 * Spawns a proxy process and resolves once the process itself (not a wrapper) listens on a TCP port; its
 * executable must be `command` itself (after symlinks), so a wrapper script cannot end up being measured.
 */
async function spawnProxy(
  name: TargetName,
  command: string,
  args: string[],
  expectedPort?: number,
  routineOutput?: RegExp,
): Promise<Target> {
  const child = track(spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
  const target = newTarget(name, 0);
  target.child = child;
  if (routineOutput !== undefined) target.routineOutput = routineOutput;
  let spawnError: Error | undefined;
  child.once("error", (err) => (spawnError = err));
  child.stdout!.setEncoding("utf8").on("data", (s: string) => collectLines(target, s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => collectLines(target, s));
  const deadline = Date.now() + 60_000;
  while (true) {
    if (spawnError !== undefined) throw new Error(`${name}: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${name} exited (${child.exitCode ?? child.signalCode}) before listening:\n${
          target.stderrLines.join("\n")
        }`,
      );
    }
    if (child.pid !== undefined) {
      let ports: number[] = [];
      try {
        ports = listeningPorts(child.pid);
      } catch {
        // /proc entry not ready yet
      }
      const port = expectedPort === undefined ? ports[0] : ports.find((p) => p === expectedPort);
      if (port !== undefined) {
        target.port = port;
        target.pid = child.pid;
        target.exe = readlinkSync(`/proc/${child.pid}/exe`);
        if (target.exe !== realpathSync(command)) {
          throw new Error(`${name}: pid ${child.pid} runs ${target.exe}, expected ${realpathSync(command)}`);
        }
        return target;
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`${name} did not listen within 60 s:\n${target.stderrLines.join("\n")}`);
    }
    await sleep(50);
  }
}

function collectLines(target: Target, text: string): void {
  for (const line of text.split("\n")) {
    if (line.trim() === "" || target.routineOutput?.test(line)) continue;
    target.stderrLines.push(line.trimEnd());
  }
}

/** pgrelay; with `tls`, it terminates client TLS with the test PKI's proxy certificate. */
function startPgrelay(runtime: "deno" | "bun", upstreamPort: number, tls?: TestPki): Promise<Target> {
  const flags = ["--listen", `${HOST}:0`, "--upstream", `${HOST}:${upstreamPort}`, "--log-level", "warn"];
  if (tls !== undefined) {
    flags.push("--tls-mode", "terminate", "--tls-cert", tls.proxy.certPath, "--tls-key", tls.proxy.keyPath);
  }
  const name: TargetName = tls === undefined ? runtime : `tls-${runtime}`;
  return runtime === "deno"
    ? spawnProxy(name, DENO, ["run", "-A", MOD, ...flags])
    : spawnProxy(name, BUN, [MOD, ...flags]);
}

/** pgrelay with `audit: { path, queries: true }` from a config file; the file is checked after the run. */
function startAuditedPgrelay(runtime: "deno" | "bun", upstreamPort: number): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), "pgrelay-bench-audit-"));
  tempDirs.add(dir);
  const auditPath = join(dir, "audit.jsonl");
  auditFiles.push(auditPath);
  const config = join(dir, "pgrelay.yaml");
  writeFileSync(config, `audit: { path: ${JSON.stringify(auditPath)}, queries: true }\n`);
  const flags = ["--config", config, "--listen", `${HOST}:0`, "--upstream", `${HOST}:${upstreamPort}`, "--log-level", "warn"];
  return runtime === "deno"
    ? spawnProxy("audit-deno", DENO, ["run", "-A", MOD, ...flags])
    : spawnProxy("audit-bun", BUN, [MOD, ...flags]);
}

/** An audit row only means something if its log really holds the queries. */
function checkAuditFiles(): void {
  for (const file of auditFiles) {
    const text = readFileSync(file, "utf8");
    const queries = text.split("\n").filter((line) => line.includes('"event":"query"')).length;
    if (queries < 1000) throw new Error(`the audit log ${file} holds ${queries} query events: the audit rows measured nothing`);
    progress(`  audit log ${file}: ${queries} query events`);
  }
}

const auditFiles: string[] = [];

function startBareRelay(runtime: "deno" | "bun", upstreamPort: number, kind: "bare" | "raw" = "bare"): Promise<Target> {
  const args = ["0", String(upstreamPort)];
  const script = kind === "bare" ? BARE_RELAY : RAW_RELAY;
  return runtime === "deno"
    ? spawnProxy(`${kind}-deno`, DENO, ["run", "-A", script, ...args])
    : spawnProxy(`${kind}-bun`, BUN, [script, ...args]);
}

async function startHaproxy(upstreamPort: number): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), "pgrelay-bench-haproxy-"));
  tempDirs.add(dir);
  let lastError: unknown;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const port = await freePort(HOST);
    const config = join(dir, "haproxy.cfg");
    writeFileSync(
      config,
      [
        "global",
        "  nbthread 1",
        "  maxconn 1000",
        "defaults",
        "  mode tcp",
        "  timeout connect 5s",
        "  timeout client 1h",
        "  timeout server 1h",
        "listen pg",
        `  bind ${HOST}:${port}`,
        `  server pg ${HOST}:${upstreamPort}`,
        "",
      ].join("\n"),
    );
    try {
      return await spawnProxy("haproxy", HAPROXY, ["-db", "-f", config], port);
    } catch (err) {
      lastError = err; // most likely the port was taken between freePort() and bind: try another
    }
  }
  throw lastError;
}

/** PgBouncer's routine notices on stderr (it logs there and to its logfile when not daemonized). */
const PGBOUNCER_ROUTINE =
  / LOG (kernel file descriptor limit|listening on |process up|got SIGTERM|got SIGINT|shutting down)/;

/**
 * PgBouncer (session pooling) terminating client TLS with the same certificate as pgrelay; plaintext to
 * PostgreSQL; trust auth for the bench user (listed in the auth_file, as PgBouncer requires). As root it is
 * started with `-u postgres` (it refuses to run as root): it drops privileges itself, so the spawned pid is
 * PgBouncer and not a runuser/su wrapper. Its directory, config and key copies belong to that user.
 */
async function startPgbouncer(upstreamPort: number, certs: TestPki): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), "pgrelay-bench-pgbouncer-"));
  tempDirs.add(dir);
  const account = postgresAccount(); // null unless root
  const certPath = join(dir, "proxy.crt");
  const keyPath = join(dir, "proxy.key");
  copyFileSync(certs.proxy.certPath, certPath);
  copyFileSync(certs.proxy.keyPath, keyPath);
  chmodSync(keyPath, 0o600);
  const authFile = join(dir, "users.txt");
  writeFileSync(authFile, `"${USER.name}" ""\n`);
  let lastError: unknown;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const port = await freePort(HOST);
    const config = join(dir, "pgbouncer.ini");
    writeFileSync(
      config,
      [
        "[databases]",
        `${DATABASE} = host=${HOST} port=${upstreamPort} dbname=${DATABASE}`,
        "[pgbouncer]",
        `listen_addr = ${HOST}`,
        `listen_port = ${port}`,
        "unix_socket_dir =",
        "pool_mode = session",
        "auth_type = trust",
        `auth_file = ${authFile}`,
        "max_client_conn = 100",
        "default_pool_size = 50",
        "client_tls_sslmode = require",
        `client_tls_cert_file = ${certPath}`,
        `client_tls_key_file = ${keyPath}`,
        "server_tls_sslmode = disable",
        "log_connections = 0",
        "log_disconnections = 0",
        "log_stats = 0",
        `logfile = ${join(dir, "pgbouncer.log")}`,
        `pidfile = ${join(dir, "pgbouncer.pid")}`,
        "",
      ].join("\n"),
    );
    if (account !== null) {
      for (const f of [dir, certPath, keyPath, authFile, config]) chownSync(f, account.uid, account.gid);
    }
    const user = account === null ? [] : ["-u", "postgres"];
    try {
      return await spawnProxy("pgbouncer-tls", PGBOUNCER, [...user, config], port, PGBOUNCER_ROUTINE);
    } catch (err) {
      lastError = err; // most likely the port was taken between freePort() and bind: try another
      rmSync(join(dir, "pgbouncer.pid"), { force: true });
    }
  }
  throw lastError;
}

/** Confirms the measured pid is the real worker: no child processes, and reports its executable. */
function verifyWorker(target: Target): void {
  if (target.pid === undefined) return;
  const kids = childPids(target.pid);
  if (kids.length > 0) {
    throw new Error(
      `${target.name} (pid ${target.pid}) has child processes ${kids.join(", ")}: CPU would be misattributed`,
    );
  }
  target.threads = readdirSync(`/proc/${target.pid}/task`).length;
}

function assertAlive(target: Target): void {
  const child = target.child;
  if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
    throw new Error(`${target.name} proxy died (${child.exitCode ?? child.signalCode})`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Measurements

const USER = { name: "" };
let PGBENCH = "";
let PSQL = "";

/** Connection flags for psql and pgbench (pgbench's -d means --debug, so the database is positional). */
function connArgs(port: number): string[] {
  return ["-h", HOST, "-p", String(port), "-U", USER.name];
}
const DATABASE = "postgres";

async function pgbench(target: Target, seconds: number): Promise<PgbenchRun> {
  assertAlive(target);
  const host0 = hostSnapshot();
  const before = target.pid === undefined ? 0 : cpuTicks(target.pid);
  const result = await run(
    PGBENCH,
    [
      "-S",
      "-n",
      "-c",
      String(CLIENTS),
      "-j",
      String(THREADS),
      "-T",
      String(seconds),
      ...connArgs(target.port),
      DATABASE,
    ],
    (seconds + 120) * 1000,
    target.tls,
  );
  const after = target.pid === undefined ? 0 : cpuTicks(target.pid);
  const host1 = hostSnapshot();
  const num = (re: RegExp): number => Number(re.exec(result.stdout)?.[1] ?? NaN);
  const run_: PgbenchRun = {
    round: 0,
    transactions: num(/number of transactions actually processed: (\d+)/),
    failed: num(/number of failed transactions: (\d+)/) || 0,
    tps: num(/tps = ([\d.]+) \(without initial connection time\)/),
    latencyMs: num(/latency average = ([\d.]+) ms/),
    cpuTicks: after - before,
    interference: interference(host0, host1),
  };
  if (result.code !== 0 || !(run_.transactions > 0)) {
    throw new Error(
      `pgbench via ${target.name} exited with ${result.code}\n${result.stdout}${result.stderr}`.trimEnd(),
    );
  }
  if (result.stderr.trim() !== "") {
    target.errors.push(`pgbench stderr: ${result.stderr.trim().split("\n").slice(0, 5).join(" | ")}`);
  }
  return run_;
}

async function copyOut(target: Target): Promise<CopyRun> {
  assertAlive(target);
  const sql =
    `\\copy (select repeat('x', ${ROW_BYTES}) from generate_series(1, ${COPY_ROWS})) to '/dev/null'`;
  const host0 = hostSnapshot();
  const before = target.pid === undefined ? 0 : cpuTicks(target.pid);
  const result = await runChecked(
    PSQL,
    [
      "-X",
      "-v",
      "ON_ERROR_STOP=1",
      ...connArgs(target.port),
      "-d",
      DATABASE,
      "-c",
      sql,
    ],
    300_000,
    target.tls,
  );
  const after = target.pid === undefined ? 0 : cpuTicks(target.pid);
  const host1 = hostSnapshot();
  if (!result.stdout.includes(`COPY ${COPY_ROWS}`)) {
    throw new Error(
      `COPY via ${target.name}: unexpected output ${JSON.stringify(result.stdout + result.stderr)}`,
    );
  }
  return {
    round: 0,
    seconds: result.seconds,
    cpuTicks: after - before,
    interference: interference(host0, host1),
  };
}

/** Runs `step`, recording (not throwing) its failure so the other targets still get measured. */
async function attempt<T>(target: Target, what: string, step: () => Promise<T>): Promise<T | undefined> {
  try {
    return await step();
  } catch (err) {
    if (interrupted !== undefined) throw err;
    const message = err instanceof Error ? err.message : String(err);
    target.errors.push(`${what}: ${message}`);
    progress(`  ${target.name}: ${what} FAILED: ${message.split("\n")[0]}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Summary

interface Summary {
  tps: number;
  transactions: number;
  failed: number;
  latencyMs: number;
  cpuUsPerTx: number;
  /** Proxy CPU as a share of one core while pgbench ran. */
  cpuCoreShare: number;
  copySecondsAll: number[];
  /** Median over all COPY runs (what the table shows and the 5 % check uses). */
  copySeconds: number;
  copySecondsMin: number;
  cpuSecondsPerGB: number;
  peakRssMB: number;
  tpsAll: number[];
}

function summarize(t: Target): Summary {
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const tx = sum(t.pgbench.map((r) => r.transactions));
  const ticks = sum(t.pgbench.map((r) => r.cpuTicks));
  const copyTicks = sum(t.copy.map((r) => r.cpuTicks));
  const proxy = t.pid !== undefined;
  const none = t.pgbench.length === 0;
  return {
    tps: none ? NaN : sum(t.pgbench.map((r) => r.tps)) / t.pgbench.length,
    transactions: tx,
    failed: sum(t.pgbench.map((r) => r.failed)),
    latencyMs: none ? NaN : sum(t.pgbench.map((r) => r.latencyMs)) / t.pgbench.length,
    cpuUsPerTx: proxy && tx > 0 ? (ticks / CLK_TCK) * 1e6 / tx : NaN,
    cpuCoreShare: proxy && !none ? ticks / CLK_TCK / (SECONDS * t.pgbench.length) : NaN,
    copySeconds: median(t.copy.map((r) => r.seconds)),
    copySecondsMin: t.copy.length === 0 ? NaN : Math.min(...t.copy.map((r) => r.seconds)),
    copySecondsAll: t.copy.map((r) => round(r.seconds, 2)),
    cpuSecondsPerGB: proxy && t.copy.length > 0
      ? copyTicks / CLK_TCK / ((COPY_WIRE_BYTES * t.copy.length) / 1e9)
      : NaN,
    peakRssMB: t.peakRssKiB === undefined ? NaN : t.peakRssKiB / 1024,
    tpsAll: t.pgbench.map((r) => round(r.tps, 0)),
  };
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function pct(share: number): string {
  return Number.isFinite(share) ? `${(share * 100).toFixed(0)}%` : "?";
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "—";
}

function ratio(x: number, base: number): number {
  return Number.isFinite(x) && Number.isFinite(base) && base > 0 ? x / base : NaN;
}

function verdict(value: number, goal: number): string {
  if (!Number.isFinite(value)) return "n/a";
  return value <= goal ? "PASS" : "MISS";
}

function report(targets: Target[], meta: Record<string, unknown>): void {
  const s = Object.fromEntries(targets.map((t) => [t.name, summarize(t)])) as Record<TargetName, Summary>;
  const direct = s.direct;
  const haproxy = s.haproxy;
  const tlsBase = s[TLS_BASELINE];
  const rows: string[][] = [];
  const checks: Record<string, unknown> = {};
  /** TLS rows: ratios only (no target is stated for them). */
  const tlsComparisons: Record<string, unknown> = {};
  for (const t of targets) {
    const x = s[t.name];
    const proxy = t.name !== "direct";
    const tpsRatio = ratio(x.tps, direct.tps);
    const cpuRatio = ratio(x.cpuUsPerTx, (t.tls ? tlsBase : haproxy).cpuUsPerTx);
    const copyRatio = ratio(x.copySeconds, direct.copySeconds);
    let cpuCell = proxy && t.name !== "haproxy" ? `${fmt(cpuRatio, 2)}×` : "—";
    if (t.name === "haproxy") cpuCell = "1.00× (baseline)";
    const cpuGoal = GOAL_CPU_VS_HAPROXY[t.name];
    if (cpuGoal !== undefined) {
      const v = verdict(cpuRatio, cpuGoal);
      cpuCell = `${fmt(cpuRatio, 2)}× ${v} (≤${cpuGoal.toFixed(1)}×)`;
      checks[`${t.name}_cpu_per_tx_vs_haproxy`] = { ratio: round(cpuRatio, 3), goal: cpuGoal, verdict: v };
    }
    let copyCell = "1.00× (baseline)";
    if (t.tls) {
      cpuCell = t.name === TLS_BASELINE ? "1.00× (TLS baseline)" : `${fmt(cpuRatio, 2)}× vs pgbouncer TLS`;
      copyCell = `${fmt(copyRatio, 3)}× (no target)`;
      tlsComparisons[t.name] = {
        tls: t.tlsInfo ?? null,
        cpuPerTxVsPgbouncerTls: round(cpuRatio, 3),
        copyVsDirect: round(copyRatio, 4),
        copyVsPgbouncerTls: round(ratio(x.copySeconds, tlsBase.copySeconds), 4),
        cpuPerGBVsPgbouncerTls: round(ratio(x.cpuSecondsPerGB, tlsBase.cpuSecondsPerGB), 3),
      };
    } else if (proxy) {
      const v = verdict(copyRatio, GOAL_COPY_VS_DIRECT);
      copyCell = `${fmt(copyRatio, 3)}× ${v} (≤${GOAL_COPY_VS_DIRECT.toFixed(2)}×)`;
      checks[`${t.name}_copy_vs_direct`] = {
        ratio: round(copyRatio, 4),
        goal: GOAL_COPY_VS_DIRECT,
        verdict: v,
      };
    }
    rows.push([
      LABEL[t.name] + (t.errors.length > 0 ? " ⚠" : ""),
      fmt(x.tps, 0),
      proxy ? `${fmt(tpsRatio, 3)}×` : "1.000×",
      proxy ? fmt(x.cpuUsPerTx, 1) : "—",
      cpuCell,
      fmt(x.copySeconds, 2),
      copyCell,
      proxy ? fmt(x.cpuSecondsPerGB, 2) : "—",
      proxy ? fmt(x.peakRssMB, 1) : "—",
    ]);
  }
  const header = [
    "target",
    "TPS",
    "TPS vs direct",
    "proxy CPU µs/tx",
    "CPU/tx vs haproxy",
    "COPY s",
    "COPY vs direct",
    "proxy CPU s/GB",
    "peak RSS MB",
  ];
  const out: string[] = [];
  out.push(
    `pgbench -S -n -c ${CLIENTS} -j ${THREADS} -T ${SECONDS} × ${ROUNDS} round(s) per target (scale ${SCALE}); ` +
      `COPY OUT ${COPY_ROWS} × ${ROW_BYTES} B rows (${
        (COPY_WIRE_BYTES / 1e6).toFixed(0)
      } MB on the wire), median of ${ROUNDS * COPY_RUNS}; ` +
      `${meta["cpus"]} CPU(s), CLK_TCK ${CLK_TCK}`,
    `TLS rows: clients use sslmode=require, upstream leg plaintext; CPU/tx is compared with pgbouncer TLS and ` +
      `COPY with (plaintext) direct; ratios only, no targets`,
    "",
  );
  out.push(`| ${header.join(" | ")} |`);
  out.push(`|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
  for (const row of rows) out.push(`| ${row.join(" | ")} |`);
  out.push("");
  for (const t of targets) {
    const x = s[t.name];
    const notes = [
      `TPS per round ${x.tpsAll.join(", ")}`,
      `latency ${fmt(x.latencyMs, 3)} ms`,
      `failed tx ${x.failed}`,
      `COPY s ${x.copySecondsAll.join(", ")} (fastest ${fmt(x.copySecondsMin, 2)})`,
      `other load during pgbench ${t.pgbench.map((r) => pct(r.interference.otherShare)).join(", ")}` +
      ` / during COPY ${t.copy.map((r) => pct(r.interference.otherShare)).join(", ")}`,
    ];
    if (t.pid !== undefined) {
      notes.push(
        `proxy CPU ${fmt(x.cpuCoreShare * 100, 0)}% of a core under pgbench`,
        `pid ${t.pid} ${t.exe} (${t.threads} threads)`,
      );
    }
    if (t.tls) {
      notes.push(
        `client TLS ${t.tlsInfo ?? "?"}`,
        `COPY vs pgbouncer TLS ${fmt(ratio(x.copySeconds, tlsBase.copySeconds), 3)}×`,
      );
    }
    out.push(`- ${LABEL[t.name]}: ${notes.join("; ")}`);
  }
  const disturbed = targets.flatMap((t) =>
    [
      ...t.pgbench.map((r) => ({ what: `pgbench round ${r.round}`, i: r.interference })),
      ...t.copy.map((r) => ({
        what: `COPY round ${r.round}`,
        i: r.interference,
      })),
    ]
      .filter(({ i }) => i.otherShare > NOISE_LIMIT || i.stealShare > NOISE_LIMIT)
      .map(({ what, i }) => `${t.name} ${what} (other ${pct(i.otherShare)}, steal ${pct(i.stealShare)})`)
  );
  if (disturbed.length > 0) {
    out.push(
      "",
      `WARNING: other processes or the hypervisor took more than ${pct(NOISE_LIMIT)} of the host during ` +
        `${disturbed.length} measurement(s); compare with care or rerun on a quiet host:`,
      ...disturbed.map((d) => `    ${d}`),
    );
  }
  for (const t of targets) {
    if (t.errors.length === 0 && t.stderrLines.length === 0) continue;
    out.push(
      "",
      `${
        LABEL[t.name]
      }: ${t.errors.length} error(s), ${t.stderrLines.length} line(s) on the proxy's stderr/stdout`,
    );
    for (const e of t.errors) out.push(`    error: ${e.replaceAll("\n", "\n    ")}`);
    const lines = t.stderrLines;
    const shown = lines.length > 20
      ? [...lines.slice(0, 10), `... ${lines.length - 20} more ...`, ...lines.slice(-10)]
      : lines;
    for (const line of shown) out.push(`    ${line}`);
  }
  process.stdout.write(out.join("\n") + "\n\n");
  const raw = {
    bench: "pgrelay",
    ...meta,
    clkTck: CLK_TCK,
    seconds: SECONDS,
    rounds: ROUNDS,
    clients: CLIENTS,
    threads: THREADS,
    scale: SCALE,
    copyRows: COPY_ROWS,
    copyRunsPerRound: COPY_RUNS,
    copyWireBytes: COPY_WIRE_BYTES,
    targets: Object.fromEntries(
      targets.map((t) => [t.name, {
        ...roundAll(s[t.name]),
        pid: t.pid ?? null,
        exe: t.exe ?? null,
        tls: t.tls ? (t.tlsInfo ?? "?") : null,
        threads: t.threads ?? null,
        port: t.port,
        pgbenchRuns: t.pgbench,
        copyRuns: t.copy.map((r) => ({ ...r, seconds: round(r.seconds, 4) })),
        errors: t.errors,
        proxyOutputLines: t.stderrLines.length,
      }]),
    ),
    checks,
    tlsComparisons,
  };
  process.stdout.write(JSON.stringify(raw) + "\n");
}

function roundAll(summary: Summary): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(summary).map((
      [k, v],
    ) => [k, typeof v === "number" ? (Number.isFinite(v) ? round(v, 4) : null) : v]),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const started = Date.now();
  const cpus = osCpus().length;
  const busyAtStart = round(await hostBusyShare(1000), 3);
  progress(
    `starting PostgreSQL (BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, ${cpus} CPUs, ` +
      `${(busyAtStart * 100).toFixed(0)}% busy before the run)`,
  );
  if (busyAtStart > 0.2) progress("  warning: the host is already busy; expect noisy numbers");
  cluster = await startPostgres();
  const pg = cluster;
  PGBENCH = join(pg.binDir, "pgbench");
  PSQL = join(pg.binDir, "psql");
  USER.name = pg.users.trust.user;
  // The test rig's 32 MB shared_buffers would make pgbench -S at scale 10 mostly OS-cache reads.
  await runChecked(
    PSQL,
    [
      "-X",
      "-q",
      "-h",
      pg.socketDir,
      "-p",
      String(pg.port),
      "-U",
      "postgres",
      "-d",
      "postgres",
      "-c",
      "ALTER SYSTEM SET shared_buffers = '256MB'",
    ],
    60_000,
  );
  await pg.restart();
  const version = (await runChecked(
    PSQL,
    ["-X", "-At", ...connArgs(pg.port), "-d", DATABASE, "-c", "show server_version"],
    60_000,
  )).stdout.trim();
  progress(`PostgreSQL ${version} on ${HOST}:${pg.port}; pgbench -i -s ${SCALE}`);
  await runChecked(PGBENCH, ["-i", "-q", "-s", String(SCALE), ...connArgs(pg.port), DATABASE], 300_000);

  pki = await makeTestPki();
  progress("starting pgrelay on Deno and Bun (plaintext and TLS), bare relays, haproxy and PgBouncer");
  // haproxy and PgBouncer need ports picked in advance: bind them before the others take kernel-assigned ports.
  const haproxy = await startHaproxy(pg.port);
  const pgbouncerTls = await startPgbouncer(pg.port, pki);
  const [deno, bun, bareDeno, bareBun, rawDeno, rawBun, auditDeno, auditBun, tlsDeno, tlsBun] = await Promise.all([
    startPgrelay("deno", pg.port),
    startPgrelay("bun", pg.port),
    startBareRelay("deno", pg.port),
    startBareRelay("bun", pg.port),
    startBareRelay("deno", pg.port, "raw"),
    startBareRelay("bun", pg.port, "raw"),
    startAuditedPgrelay("deno", pg.port),
    startAuditedPgrelay("bun", pg.port),
    startPgrelay("deno", pg.port, pki),
    startPgrelay("bun", pg.port, pki),
  ]);
  const targets: Target[] = [
    newTarget("direct", pg.port),
    deno,
    bun,
    bareDeno,
    bareBun,
    rawDeno,
    rawBun,
    auditDeno,
    auditBun,
    haproxy,
    tlsDeno,
    tlsBun,
    pgbouncerTls,
  ];
  if (new Set(targets.map((t) => t.port)).size !== targets.length) {
    throw new Error(`targets share a port: ${targets.map((t) => `${t.name}=${t.port}`).join(" ")}`);
  }
  for (const t of targets) {
    verifyWorker(t);
    try {
      const smoke = await runChecked(
        PSQL,
        ["-X", "-At", ...connArgs(t.port), "-d", DATABASE, "-c", "select 1", "-c", "\\conninfo"],
        30_000,
        t.tls,
      );
      // psql ≤ 17: 'SSL connection (protocol: TLSv1.3, cipher: TLS_AES_256_GCM_SHA384, ...)'.
      const ssl = /SSL connection \(protocol: ([^,]+), cipher: ([^,)]+)/.exec(smoke.stdout);
      if (t.tls) {
        t.tlsInfo = ssl === null ? "TLS (psql did not print the cipher)" : `${ssl[1]} ${ssl[2]}`;
      } else if (ssl !== null) {
        throw new Error(`a plaintext target negotiated SSL: ${ssl[0]}`);
      }
    } catch (err) {
      const output = t.stderrLines.length > 0
        ? `\n--- ${t.name} output ---\n${t.stderrLines.join("\n")}`
        : "";
      throw new Error(
        `smoke test via ${t.name} failed: ${err instanceof Error ? err.message : String(err)}${output}`,
      );
    }
    if (t.pid !== undefined) {
      progress(
        `  ${t.name}: pid ${t.pid} (${t.exe}, ${t.threads} threads, no child processes) on port ${t.port}` +
          (t.tlsInfo === undefined ? "" : `, client TLS ${t.tlsInfo}`),
      );
    }
  }

  progress(`warm-up: pgbench -T ${WARMUP_SECONDS} per target (not counted)`);
  for (const t of targets) await attempt(t, "warm-up pgbench", () => pgbench(t, WARMUP_SECONDS));

  for (let r = 1; r <= ROUNDS; r++) {
    // Rotate the order each round so no target always runs first (cache, thermal, background drift).
    const order = targets.map((_, i) => targets[(i + r - 1) % targets.length]!);
    for (const t of order) {
      progress(`round ${r}/${ROUNDS}: pgbench -S -c ${CLIENTS} -j ${THREADS} -T ${SECONDS} via ${t.name}`);
      const result = await attempt(t, `pgbench round ${r}`, () => pgbench(t, SECONDS));
      if (result !== undefined) t.pgbench.push({ ...result, round: r });
    }
    progress(
      `round ${r}/${ROUNDS}: COPY OUT ${
        (COPY_WIRE_BYTES / 1e6).toFixed(0)
      } MB × ${COPY_RUNS} per target, interleaved`,
    );
    for (let k = 0; k < COPY_RUNS; k++) {
      for (const t of order) {
        const result = await attempt(t, `COPY round ${r}`, () => copyOut(t));
        if (result !== undefined) t.copy.push({ ...result, round: r });
      }
    }
  }

  progress("collecting peak RSS and stopping proxies");
  for (const t of targets) {
    if (t.pid === undefined) continue;
    try {
      assertAlive(t);
      verifyWorker(t);
      t.peakRssKiB = statusKiB(t.pid, "VmHWM");
    } catch (err) {
      t.errors.push(`end of run: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  checkAuditFiles();
  await cleanup();
  await sleep(100); // let the last proxy output arrive
  report(targets, {
    cpus,
    postgres: version,
    hostBusyShareAtStart: busyAtStart,
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
  });
  progress(`done in ${Math.round((Date.now() - started) / 1000)} s`);
}

try {
  await main();
} catch (err) {
  if (interrupted === undefined) {
    progress(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanup();
    process.exit(1);
  }
  await cleanup();
  await new Promise(() => {}); // the signal handler exits with 128 + signal number
}
process.exit(0);
