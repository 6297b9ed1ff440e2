/**
 * Pooled pgrelay beside PgBouncer 1.25 in the same pool mode, in one run, against one throw-away PostgreSQL
 * (issue 11's performance list). Three scenarios:
 *
 *  1. `pgbench -C -S -c 8 -j 2`: a new connection and a SCRAM login per transaction. Targets: direct, and
 *     PgBouncer / pgrelay (Bun) / pgrelay (Deno), each in session and in transaction mode with a pool of 8;
 *     both proxies hold the server's SCRAM verifier in their auth file and log in to the server themselves.
 *  2. `pgbench -S -c 50 -j 2` on a transaction pool of 8, `-M prepared` (PgBouncer with
 *     max_prepared_statements = 200) and `-M simple` (the comparable row while pgrelay lacks renaming).
 *  3. POOL_IDLE_CLIENTS (default 10000, or what the fd limit allows) idle clients on a transaction pool of 5:
 *     each logs in with SCRAM (a client that caches the salted password, so 10,000 logins stay cheap), runs
 *     `select 1` and stays idle; the proxy's RSS growth per client.
 *
 *   node_modules/.bin/bun bench/pooled.ts        (or: make bench-pooled)
 *
 * Environment: POOL_BENCH_SECONDS (pgbench -T, default 10), POOL_BENCH_ROUNDS (default 1; rounds rotate the
 * target order), POOL_IDLE_CLIENTS, POOL_SCENARIOS (comma list of connect,prepared,idle). Markdown tables
 * and one JSON line go to stdout, progress to stderr.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { chownSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runPgbench } from "../tests/support/clients.ts";
import { freePort } from "../tests/support/free_port.ts";
import { query, saslInitialResponse, saslResponse, startupMessage } from "../tests/support/frontend_frames.ts";
import { postgresAccount } from "../tests/support/pg_os_user.ts";
import { type PostgresCluster, startPostgres } from "../tests/support/postgres.ts";
import { untilListening } from "./listening.ts";
import { rssBytes, settledRss } from "./process_memory.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MOD = join(ROOT, "mod.ts");
const DENO = realpathSync(join(ROOT, "node_modules/.bin/deno"));
const BUN = realpathSync(join(ROOT, "node_modules/.bin/bun"));
const PGBOUNCER = process.env.PGBOUNCER ?? "/work/shared/tools/pgbouncer-1.25.2";
const HOST = "127.0.0.1";
const DATABASE = "app";
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}
const SECONDS = positiveInt("POOL_BENCH_SECONDS", 10);
const ROUNDS = positiveInt("POOL_BENCH_ROUNDS", 1);
const FD_LIMIT = Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim()) || 1024;
/** 10,000 when every process (bench, proxy) can hold that many sockets plus headroom, else 2,000. */
const IDLE_CLIENTS = positiveInt("POOL_IDLE_CLIENTS", FD_LIMIT >= 10_500 ? 10_000 : 2_000);
const SCENARIOS = new Set((process.env.POOL_SCENARIOS ?? "connect,prepared,idle").split(","));

type Kind = "pgbouncer" | "bun" | "deno";
type Mode = "session" | "transaction";
const LABEL: Record<Kind, string> = { pgbouncer: "PgBouncer 1.25", bun: "pgrelay (Bun)", deno: "pgrelay (Deno)" };

const progress = (m: string) => process.stderr.write(`[pooled ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------
// Processes

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
function cleanupSync(): void {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.on("exit", cleanupSync);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    cleanupSync();
    process.exit(130);
  });
}

interface Proxy {
  kind: Kind;
  mode: Mode;
  child: ChildProcess;
  pid: number;
  port: number;
  output: string[];
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
}
const ROUTINE = /^\s*$| LOG (kernel file descriptor limit|listening on |process up|got SIGTERM|got SIGINT|shutting down|stats:)/;

async function spawnListening(kind: Kind, mode: Mode, command: string, args: string[], port: number): Promise<Proxy> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const output: string[] = [];
  const collect = (s: string) => output.push(...s.split("\n").filter((l) => !ROUTINE.test(l)));
  child.stdout!.setEncoding("utf8").on("data", collect);
  child.stderr!.setEncoding("utf8").on("data", collect);
  await untilListening(child, port, `${LABEL[kind]} ${mode}`, output);
  const exe = readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0")[0];
  if (realpathSync(`/proc/${child.pid}/exe`) !== realpathSync(command)) throw new Error(`${kind}: measured pid runs ${exe}`);
  return { kind, mode, child, pid: child.pid!, port, output };
}

async function stopProxy(p: Proxy): Promise<void> {
  if (p.child.exitCode === null) {
    const exited = new Promise((resolve) => p.child.once("exit", resolve));
    p.child.kill("SIGKILL");
    await exited;
  }
  children.delete(p.child);
}

interface PoolSpec {
  mode: Mode;
  size: number;
  prepared?: boolean;
  maxClients?: number;
}

/** `auth.file` / `auth_file` line: the server's own SCRAM verifier of scram_user. */
let userlist = "";

async function startPgrelay(kind: "bun" | "deno", spec: PoolSpec, upstream: number): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), "pgrelay-pooled-"));
  dirs.add(dir);
  writeFileSync(join(dir, "userlist.txt"), userlist, { mode: 0o600 });
  const port = await freePort(HOST);
  writeFileSync(
    join(dir, "pgrelay.yaml"),
    [
      `listen: "${HOST}:${port}"`,
      `upstream: "${HOST}:${upstream}"`,
      "log_level: warn",
      `auth: { mode: scram, file: ${JSON.stringify(join(dir, "userlist.txt"))} }`,
      `pool: { mode: ${spec.mode}, size: ${spec.size}, max_waiting: ${(spec.maxClients ?? 100) + 100} }`,
      "",
    ].join("\n"),
  );
  const args = ["--config", join(dir, "pgrelay.yaml")];
  const [command, full] = kind === "deno" ? [DENO, ["run", "-A", MOD, ...args]] : [BUN, [MOD, ...args]];
  return await spawnListening(kind, spec.mode, command, full, port);
}

async function startPgbouncer(spec: PoolSpec, upstream: number): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), "pgrelay-pooled-pgbouncer-"));
  dirs.add(dir);
  const account = postgresAccount();
  const port = await freePort(HOST);
  const auth = join(dir, "users.txt");
  const ini = join(dir, "pgbouncer.ini");
  writeFileSync(auth, userlist, { mode: 0o600 });
  writeFileSync(
    ini,
    [
      "[databases]",
      `${DATABASE} = host=${HOST} port=${upstream} dbname=${DATABASE}`,
      "[pgbouncer]",
      `listen_addr = ${HOST}`,
      `listen_port = ${port}`,
      "unix_socket_dir =",
      `pool_mode = ${spec.mode}`,
      "auth_type = scram-sha-256",
      `auth_file = ${auth}`,
      `max_client_conn = ${(spec.maxClients ?? 100) + 100}`,
      `default_pool_size = ${spec.size}`,
      `max_prepared_statements = ${spec.prepared === true ? 200 : 0}`,
      "log_connections = 0",
      "log_disconnections = 0",
      "log_stats = 0",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      "",
    ].join("\n"),
  );
  if (account !== null) for (const f of [dir, auth, ini]) chownSync(f, account.uid, account.gid);
  return await spawnListening("pgbouncer", spec.mode, PGBOUNCER, [...(account === null ? [] : ["-u", "postgres"]), ini], port);
}

function startProxy(kind: Kind, spec: PoolSpec, upstream: number): Promise<Proxy> {
  return kind === "pgbouncer" ? startPgbouncer(spec, upstream) : startPgrelay(kind, spec, upstream);
}

// ---------------------------------------------------------------------------------------------------------
// pgbench

interface BenchRun {
  tps: number;
  transactions: number;
  failed: number;
  cpuMs: number;
  error?: string;
}

let cluster: PostgresCluster;

async function pgbench(port: number, args: string[], pid: number | undefined, seconds: number): Promise<BenchRun> {
  const before = pid === undefined ? 0 : cpuTicks(pid);
  const result = await runPgbench(["-n", "-S", "-j", "2", "-T", String(seconds), ...args], {
    host: HOST,
    port,
    ...cluster.users.scram,
    database: DATABASE,
    timeoutMs: (seconds + 60) * 1000,
    binDir: cluster.clientBinDir,
    libDir: cluster.libDir,
  });
  const cpuMs = pid === undefined ? NaN : ((cpuTicks(pid) - before) * 1000) / CLK_TCK;
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(result.stdout)?.[1] ?? 0);
  const failed = Number(/number of failed transactions: (\d+)/.exec(result.stdout)?.[1] ?? 0);
  const tps = Number(/tps = ([\d.]+)/.exec(result.stdout)?.[1] ?? 0);
  const run: BenchRun = { tps, transactions, failed, cpuMs };
  if (result.code !== 0 || transactions === 0) {
    const first = result.stderr.split("\n").map((l) => l.trim()).find((l) => /ERROR|error|FATAL/.test(l)) ?? "";
    const aborted = new Set([...result.stderr.matchAll(/client (\d+) (?:script \d+ )?aborted/g)].map((m) => m[1])).size;
    run.error = `pgbench exit ${result.code}, ${aborted} clients aborted: ${first.replace(/\s+/g, " ")}`;
  }
  return run;
}

interface Row {
  scenario: string;
  kind: Kind | "direct";
  mode: Mode | "-";
  runs: BenchRun[];
  proxyOutput: string[];
}

async function benchRow(
  scenario: string,
  kind: Kind | "direct",
  spec: PoolSpec,
  args: string[],
  rows: Map<string, Row>,
): Promise<void> {
  const key = `${scenario}/${kind}/${kind === "direct" ? "-" : spec.mode}`;
  const row = rows.get(key) ?? { scenario, kind, mode: kind === "direct" ? "-" : spec.mode, runs: [], proxyOutput: [] };
  rows.set(key, row);
  const proxy = kind === "direct" ? undefined : await startProxy(kind, spec, cluster.port);
  try {
    const port = proxy?.port ?? cluster.port;
    await pgbench(port, [...args], proxy?.pid, 2); // warm-up, not counted
    const run = await pgbench(port, args, proxy?.pid, SECONDS);
    row.runs.push(run);
    progress(
      `${scenario} ${kind} ${row.mode}: ${run.tps.toFixed(1)} TPS, ${run.transactions} tx, ` +
        `${(run.cpuMs / run.transactions).toFixed(3)} ms CPU/tx${run.error ? `, ERROR ${run.error}` : ""}`,
    );
  } finally {
    if (proxy !== undefined) {
      await stopProxy(proxy);
      row.proxyOutput.push(...proxy.output.slice(0, 10));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Idle clients: SCRAM login with a cached salted password, `select 1`, then idle

const saltedCache = new Map<string, { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer }>();
function keys(password: string, salt: string, iterations: number) {
  const k = `${salt}:${iterations}`;
  let v = saltedCache.get(k);
  if (v === undefined) {
    const salted = pbkdf2Sync(password, Buffer.from(salt, "base64"), iterations, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    v = {
      clientKey,
      storedKey: createHash("sha256").update(clientKey).digest(),
      serverKey: createHmac("sha256", salted).update("Server Key").digest(),
    };
    saltedCache.set(k, v);
  }
  return v;
}

function idleClient(port: number, user: string, password: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, HOST);
    let buf: Buffer = Buffer.alloc(0);
    const nonce = randomBytes(18).toString("base64");
    const firstBare = `n=,r=${nonce}`;
    let expected = "";
    let queried = false;
    const fail = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error("client not idle within 60 s")), 60_000);
    socket.once("error", fail);
    socket.on("connect", () => socket.write(startupMessage({ user, database: DATABASE })));
    socket.on("data", (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) break;
        const type = String.fromCharCode(buf[0]!);
        const body = buf.subarray(5, 1 + len);
        buf = buf.subarray(1 + len);
        if (type === "E") return fail(new Error(`error: ${body.toString("latin1").replace(/\0/g, " ")}`));
        if (type === "R") {
          const code = body.readInt32BE(0);
          if (code === 10) {
            socket.write(saslInitialResponse("SCRAM-SHA-256", new TextEncoder().encode(`n,,${firstBare}`)));
          } else if (code === 11) {
            const serverFirst = body.subarray(4).toString("utf8");
            const a = new Map(serverFirst.split(",").map((p) => [p.slice(0, 1), p.slice(2)] as const));
            const k = keys(password, a.get("s")!, Number(a.get("i")));
            const withoutProof = `c=biws,r=${a.get("r")}`;
            const authMessage = `${firstBare},${serverFirst},${withoutProof}`;
            const sig = createHmac("sha256", k.storedKey).update(authMessage).digest();
            const proof = Buffer.from(k.clientKey.map((b, i) => b ^ sig[i]!));
            expected = `v=${createHmac("sha256", k.serverKey).update(authMessage).digest("base64")}`;
            socket.write(saslResponse(new TextEncoder().encode(`${withoutProof},p=${proof.toString("base64")}`)));
          } else if (code === 12) {
            if (body.subarray(4).toString("utf8") !== expected) return fail(new Error("bad server signature"));
          } else if (code !== 0) return fail(new Error(`unexpected auth request ${code}`));
        } else if (type === "Z") {
          if (!queried) {
            queried = true;
            socket.write(query("select 1"));
          } else {
            clearTimeout(timer);
            socket.removeAllListeners("data");
            resolve(socket);
            return;
          }
        }
      }
    });
  });
}

async function openMany(port: number, count: number): Promise<Socket[]> {
  const { user, password } = cluster.users.scram;
  const sockets: Socket[] = [];
  while (sockets.length < count) {
    const n = Math.min(50, count - sockets.length);
    sockets.push(...await Promise.all(Array.from({ length: n }, () => idleClient(port, user, password))));
  }
  return sockets;
}

async function closeAll(sockets: Socket[]): Promise<void> {
  for (const s of sockets) s.destroy();
  await sleep(500);
}

interface IdleRun {
  kind: Kind;
  perClientBytes: number;
  baselineBytes: number;
  idleBytes: number;
  serverBackends: number;
  fillSeconds: number;
  error?: string;
}

async function idleRun(kind: Kind): Promise<IdleRun> {
  const proxy = await startProxy(kind, { mode: "transaction", size: 5, maxClients: IDLE_CLIENTS }, cluster.port);
  try {
    await closeAll(await openMany(proxy.port, 100));
    const baselineBytes = await settledRss(proxy.pid);
    const t0 = Date.now();
    let sockets: Socket[] = [];
    try {
      sockets = await openMany(proxy.port, IDLE_CLIENTS);
    } catch (e) {
      return { kind, perClientBytes: NaN, baselineBytes, idleBytes: NaN, serverBackends: NaN, fillSeconds: NaN, error: String(e) };
    }
    const fillSeconds = (Date.now() - t0) / 1000;
    const idleBytes = await settledRss(proxy.pid);
    const serverBackends = Number(
      await cluster.sql(`select count(*) from pg_stat_activity where usename = 'scram_user' and datname = '${DATABASE}'`),
    );
    await closeAll(sockets);
    const run = { kind, perClientBytes: (idleBytes - baselineBytes) / IDLE_CLIENTS, baselineBytes, idleBytes, serverBackends, fillSeconds };
    progress(`idle ${kind}: ${(run.perClientBytes / 1024).toFixed(2)} KiB/client, ${serverBackends} server backends, filled in ${fillSeconds.toFixed(1)} s`);
    return run;
  } finally {
    await stopProxy(proxy);
    if (proxy.output.length > 0) progress(`${kind} printed: ${proxy.output.slice(0, 5).join(" | ")}`);
  }
}

// ---------------------------------------------------------------------------------------------------------

const fmt = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : "–");
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function rowStats(row: Row) {
  const ok = row.runs.filter((r) => r.error === undefined);
  return {
    tps: ok.length ? mean(ok.map((r) => r.tps)) : NaN,
    cpuMsPerTx: ok.length ? mean(ok.map((r) => r.cpuMs / r.transactions)) : NaN,
    error: row.runs.find((r) => r.error !== undefined)?.error,
  };
}

async function main(): Promise<void> {
  const rotate = <T>(xs: T[], n: number) => xs.map((_, i) => xs[(i + n) % xs.length]!);
  progress(`PostgreSQL with max_connections 200 (pools of at most 8); fd limit ${FD_LIMIT}, ${IDLE_CLIENTS} idle clients`);
  cluster = await startPostgres({ conf: { max_connections: "200", shared_buffers: "128MB" } });
  try {
    userlist = `"${cluster.users.scram.user}" "${
      await cluster.sql(`select rolpassword from pg_authid where rolname = '${cluster.users.scram.user}'`)
    }"\n`;
    const init = await runPgbench(["-i", "-q", "-s", "1"], {
      host: HOST, port: cluster.port, ...cluster.users.scram, database: DATABASE, binDir: cluster.clientBinDir, libDir: cluster.libDir, timeoutMs: 120_000,
    });
    if (init.code !== 0) throw new Error(`pgbench -i: ${init.stderr}`);
    const rows = new Map<string, Row>();
    const kinds: Kind[] = ["pgbouncer", "bun", "deno"];
    for (let round = 0; round < ROUNDS; round++) {
      if (SCENARIOS.has("connect")) {
        progress(`round ${round + 1}: pgbench -C -S -c 8 (new connection + SCRAM per transaction)`);
        await benchRow("connect", "direct", { mode: "session", size: 8 }, ["-C", "-c", "8"], rows);
        for (const mode of ["session", "transaction"] as const) {
          for (const kind of rotate(kinds, round)) await benchRow("connect", kind, { mode, size: 8 }, ["-C", "-c", "8"], rows);
        }
      }
      if (SCENARIOS.has("prepared")) {
        progress(`round ${round + 1}: pgbench -S -c 50 on a transaction pool of 8, -M prepared and -M simple`);
        for (const m of ["prepared", "simple"] as const) {
          for (const kind of rotate(kinds, round)) {
            await benchRow(`c50-${m}`, kind, { mode: "transaction", size: 8, prepared: true }, ["-M", m, "-c", "50"], rows);
          }
        }
      }
    }
    const idle: IdleRun[] = [];
    if (SCENARIOS.has("idle")) {
      for (let round = 0; round < ROUNDS; round++) {
        for (const kind of rotate(kinds, round)) idle.push(await idleRun(kind));
      }
    }
    report(rows, idle);
  } finally {
    await cluster.stop();
  }
}

function report(rows: Map<string, Row>, idle: IdleRun[]): void {
  const out: string[] = [];
  const get = (s: string, k: string, m: string) => rows.get(`${s}/${k}/${m}`);
  if ([...rows.keys()].some((k) => k.startsWith("connect/"))) {
    out.push(
      `### pgbench -C -S -c 8 -j 2 -T ${SECONDS} (a connection + SCRAM login per transaction), pools of 8`,
      "",
      "| target | mode | TPS | proxy CPU ms / new connection | TPS vs PgBouncer | CPU/conn vs PgBouncer |",
      "| ------ | ---- | --: | ----------------------------: | ---------------: | --------------------: |",
    );
    const direct = get("connect", "direct", "-");
    if (direct) out.push(`| direct | – | ${fmt(rowStats(direct).tps, 1)} | – | | |`);
    for (const mode of ["session", "transaction"]) {
      const base = get("connect", "pgbouncer", mode);
      const b = base ? rowStats(base) : undefined;
      for (const kind of ["pgbouncer", "bun", "deno"] as const) {
        const row = get("connect", kind, mode);
        if (!row) continue;
        const s = rowStats(row);
        out.push(
          `| ${LABEL[kind]} | ${mode} | ${s.error ? `FAILED: ${s.error}` : fmt(s.tps, 1)} | ${fmt(s.cpuMsPerTx, 3)} | ${
            b ? `${fmt(s.tps / b.tps, 2)}×` : ""
          } | ${b ? `${fmt(s.cpuMsPerTx / b.cpuMsPerTx, 2)}×` : ""} |`,
        );
      }
    }
    out.push("");
  }
  if ([...rows.keys()].some((k) => k.startsWith("c50-"))) {
    out.push(
      `### pgbench -S -c 50 -j 2 -T ${SECONDS} on a transaction pool of 8 (PgBouncer max_prepared_statements = 200)`,
      "",
      "| target | -M | TPS | proxy CPU µs / tx | TPS vs PgBouncer | CPU/tx vs PgBouncer |",
      "| ------ | -- | --: | ----------------: | ---------------: | ------------------: |",
    );
    for (const m of ["prepared", "simple"]) {
      const base = get(`c50-${m}`, "pgbouncer", "transaction");
      const b = base ? rowStats(base) : undefined;
      for (const kind of ["pgbouncer", "bun", "deno"] as const) {
        const row = get(`c50-${m}`, kind, "transaction");
        if (!row) continue;
        const s = rowStats(row);
        out.push(
          `| ${LABEL[kind]} | ${m} | ${s.error ? `FAILED (${s.error})` : fmt(s.tps, 0)} | ${fmt(s.cpuMsPerTx * 1000, 1)} | ${
            b && !s.error ? `${fmt(s.tps / b.tps, 2)}×` : ""
          } | ${b && !s.error ? `${fmt(s.cpuMsPerTx / b.cpuMsPerTx, 2)}×` : ""} |`,
        );
      }
    }
    out.push("");
  }
  if (idle.length > 0) {
    const per = (k: Kind) => mean(idle.filter((r) => r.kind === k && r.error === undefined).map((r) => r.perClientBytes));
    out.push(
      `### ${IDLE_CLIENTS} idle clients (SCRAM login, select 1) on a transaction pool of 5 (fd limit ${FD_LIMIT})`,
      "",
      "| target | KiB per idle client | vs PgBouncer | goal | server backends | fill time |",
      "| ------ | ------------------: | -----------: | ---: | --------------: | --------: |",
    );
    const goal: Record<Kind, string> = { pgbouncer: "", bun: "≤ 8 KiB", deno: "≤ 16 KiB" };
    for (const kind of ["pgbouncer", "bun", "deno"] as const) {
      const mine = idle.filter((r) => r.kind === kind);
      if (mine.length === 0) continue;
      const err = mine.find((r) => r.error)?.error;
      const v = per(kind);
      out.push(
        `| ${LABEL[kind]} | ${err ? `FAILED: ${err}` : fmt(v / 1024, 2)} | ${fmt(v / per("pgbouncer"), 1)}× | ${goal[kind]}${
          goal[kind] && Number.isFinite(v) ? (v <= (kind === "bun" ? 8 : 16) * 1024 ? " PASS" : " MISS") : ""
        } | ${mine.map((r) => r.serverBackends).join(", ")} | ${mine.map((r) => `${fmt(r.fillSeconds, 1)} s`).join(", ")} |`,
      );
    }
    out.push("");
  }
  for (const row of rows.values()) {
    if (row.proxyOutput.length > 0) out.push(`${row.kind} ${row.mode} (${row.scenario}) printed: ${row.proxyOutput.join(" | ")}`);
  }
  out.push(
    JSON.stringify({
      seconds: SECONDS,
      rounds: ROUNDS,
      idleClients: IDLE_CLIENTS,
      rows: [...rows.values()].map((r) => ({ scenario: r.scenario, kind: r.kind, mode: r.mode, runs: r.runs })),
      idle,
    }),
  );
  process.stdout.write(`${out.join("\n")}\n`);
}

await main();
process.exit(0);
