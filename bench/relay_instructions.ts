/**
 * Instructions per transaction of each relay, counted by valgrind (callgrind), not timed: on a shared, busy
 * host CPU time per transaction swings by 20 % between runs, instruction counts by a few tenths of one.
 * Each relay runs under `valgrind --tool=callgrind`; after a warm-up (the JIT settles) its counters are
 * zeroed, `pgbench -S -c 1 -t INSN_TX` runs through it (one client: every transaction is one read and one
 * write per direction, with no batching that depends on load) and the counters are dumped. Kernel work
 * (syscalls) is not counted: compare syscalls separately (strace -c) when a change could alter them.
 *
 *   node_modules/.bin/bun bench/relay_instructions.ts [target ...]
 *
 * Targets: raw-bun, bare-bun, bun, raw-deno, bare-deno, deno (default: all six), and alt-bun / alt-deno:
 * pgrelay from another checkout given as INSN_ALT (a directory with mod.ts, e.g. an older commit from
 * `git archive`), to measure a change before and after in one run.
 * Environment: INSN_TX (measured transactions, default 2000), INSN_WARMUP (transactions before counting,
 * default 3000), INSN_ROUNDS (measurements per target, default 1; targets interleaved), INSN_KEEP=1 keeps
 * the callgrind dumps (read them with callgrind_annotate).
 * Slow: valgrind runs the relays about 50 times slower than native; about 1 minute per target.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { freePort } from "../tests/support/free_port.ts";
import { startPostgres } from "../tests/support/postgres.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DENO = join(ROOT, "node_modules/.bin/deno");
const BUN = join(ROOT, "node_modules/.bin/bun");
const HOST = "127.0.0.1";
const TX = Number(process.env["INSN_TX"] ?? 2000);
const WARMUP = Number(process.env["INSN_WARMUP"] ?? 3000);
const ROUNDS = Number(process.env["INSN_ROUNDS"] ?? 1);
const ALT = process.env["INSN_ALT"];
const ALL = ["raw-bun", "bare-bun", "bun", "raw-deno", "bare-deno", "deno"];
const targets = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ALL;

function command(target: string, listen: number, upstream: number): string[] {
  const [kind, runtime] = target.split("-") as [string, string | undefined];
  const rt = runtime ?? kind;
  const root = kind === "alt" ? ALT : ROOT;
  if (root === undefined) throw new Error("alt targets need INSN_ALT");
  const script = kind === "raw"
    ? ["bench/raw_relay.ts", String(listen), String(upstream)]
    : kind === "bare"
    ? ["bench/bare_relay.ts", String(listen), String(upstream)]
    : ["mod.ts", "--listen", `${HOST}:${listen}`, "--upstream", `${HOST}:${upstream}`, "--log-level", "warn"];
  script[0] = join(root, script[0]!);
  if (rt === "bun") return [BUN, ...script];
  if (rt === "deno") return [DENO, "run", "-A", ...script];
  throw new Error(`unknown target ${JSON.stringify(target)}`);
}

function progress(message: string): void {
  process.stderr.write(`[insn ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function listening(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, HOST, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`nothing listens on ${port}`);
}

function pgbench(bin: string, port: number, user: string, tx: number): void {
  const result = spawnSync(join(bin, "pgbench"), ["-S", "-n", "-c", "1", "-t", String(tx), "-h", HOST, "-p", String(port), "-U", user, "postgres"], {
    encoding: "utf8",
    env: { ...process.env, PGSSLMODE: "disable", PGGSSENCMODE: "disable" },
  });
  if (result.status !== 0 || !result.stdout.includes(`number of transactions actually processed: ${tx}/${tx}`)) {
    throw new Error(`pgbench failed: ${result.stdout}${result.stderr}`);
  }
}

function callgrindControl(args: string[]): void {
  const result = spawnSync("callgrind_control", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`callgrind_control ${args.join(" ")}: ${result.stdout}${result.stderr}`);
}

/** Total instructions (Ir) in the dumps of `dir` newer than the ones in `seen`. */
function newDumpTotal(dir: string, seen: Set<string>): number {
  let total = 0;
  let found = 0;
  for (const name of readdirSync(dir)) {
    if (seen.has(name)) continue;
    seen.add(name);
    const text = readFileSync(join(dir, name), "utf8");
    const match = /^(?:summary|totals): (\d+)/m.exec(text);
    if (match) {
      total += Number(match[1]);
      found++;
    }
  }
  if (found === 0) throw new Error("no callgrind dump appeared");
  return total;
}

async function measure(target: string, upstreamPort: number, bin: string, user: string): Promise<number> {
  const port = await freePort(HOST);
  const dir = mkdtempSync(join(tmpdir(), `insn-${target}-`));
  const argv = command(target, port, upstreamPort);
  const child = spawn("valgrind", [
    "--tool=callgrind",
    `--callgrind-out-file=${join(dir, "cg.out")}`,
    "--dump-instr=no",
    "--dump-line=no",
    "--compress-strings=no",
    "--collect-atstart=yes",
    ...argv,
  ], { stdio: ["ignore", "ignore", "pipe"], cwd: ROOT });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr = (stderr + s).slice(-4000)));
  try {
    await listening(port, Date.now() + 180_000);
    pgbench(bin, port, user, WARMUP);
    const seen = new Set<string>();
    callgrindControl(["-z", String(child.pid)]);
    pgbench(bin, port, user, TX);
    callgrindControl(["-d", String(child.pid)]);
    // The dump is written by the next thread that runs; wait for it.
    for (let i = 0; i < 100; i++) {
      const names = readdirSync(dir);
      if (names.some((n) => !seen.has(n) && /\.\d+$/.test(n))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 500));
    return newDumpTotal(dir, seen) / TX;
  } catch (error) {
    throw new Error(`${target}: ${error instanceof Error ? error.message : String(error)}\n${stderr}`);
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    if (process.env["INSN_KEEP"]) progress(`  ${target}: callgrind dumps kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const pg = await startPostgres();
try {
  const user = pg.users.trust.user;
  const init = spawnSync(join(pg.clientBinDir, "pgbench"), ["-i", "-q", "-s", "1", "-h", HOST, "-p", String(pg.port), "-U", user, "postgres"], { encoding: "utf8" });
  if (init.status !== 0) throw new Error(`pgbench -i: ${init.stderr}`);
  const results = new Map<string, number[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const target of targets) {
      progress(`round ${round}/${ROUNDS}: ${target}`);
      const perTx = await measure(target, pg.port, pg.clientBinDir, user);
      results.set(target, [...(results.get(target) ?? []), perTx]);
      progress(`  ${target}: ${Math.round(perTx)} instructions per transaction`);
    }
  }
  const floor = (runtime: string) => results.get(`raw-${runtime}`)?.[0];
  console.log(`instructions per pgbench -S transaction (1 client, ${TX} transactions after ${WARMUP} of warm-up), valgrind ${spawnSync("valgrind", ["--version"], { encoding: "utf8" }).stdout.trim()}`);
  console.log("| target | instructions/tx (each round) | vs runtime-only |");
  console.log("|---|---:|---:|");
  for (const [target, values] of results) {
    const runtime = target.split("-").at(-1)!;
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const raw = floor(runtime);
    console.log(`| ${target} | ${values.map((v) => Math.round(v)).join(", ")} | ${raw ? `${(mean / raw).toFixed(3)}×` : "—"} |`);
  }
} finally {
  await pg.stop();
}
process.exit(0);
