/**
 * Runs pgrelay for tests on the runtime that runs the tests: in this process through `startProxy`, or as a
 * child process (`deno run -A mod.ts` under deno test, `bun mod.ts` under bun test) when a test needs the
 * proxy's own pid (memory, signals) or its command line.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { startProxy, type StartProxyOptions } from "../../mod.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import type { SocketAddress } from "../../src/core/socket.ts";
import { type ProcessResult, runProcess } from "./process.ts";

export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MOD = fileURLToPath(new URL("../../mod.ts", import.meta.url));

export const RUNTIME: "deno" | "bun" = "Bun" in globalThis ? "bun" : "deno";

/** The command line that runs pgrelay's entry point on this runtime. */
export function pgrelayCommand(args: readonly string[]): [string, string[]] {
  return RUNTIME === "deno"
    ? [process.execPath, ["run", "-A", MOD, ...args]]
    : [process.execPath, [MOD, ...args]];
}

/** Starts a proxy in this process on 127.0.0.1, port 0. */
export function startTestProxy(
  upstream: { host: string; port: number },
  options: StartProxyOptions = {},
): Promise<Proxy> {
  return startProxy({
    listen: { hostname: "127.0.0.1", port: 0 },
    upstream: { hostname: upstream.host, port: upstream.port },
    ...options,
  });
}

/** Runs pgrelay to completion (for --help, --check, bad flags). */
export function runPgrelay(args: readonly string[], timeoutMs = 30_000): Promise<ProcessResult> {
  const [command, argv] = pgrelayCommand(args);
  return runProcess(command, argv, { timeoutMs });
}

export interface PgrelayProcess {
  readonly pid: number;
  readonly address: SocketAddress;
  /** The admin HTTP address, when started with --admin. */
  readonly admin: SocketAddress | undefined;
  /** Everything the process wrote to stderr so far (its JSON log lines). */
  readonly stderr: () => string;
  /** Everything the process wrote to stdout so far (the audit log with `path: "-"`). */
  readonly stdout: () => string;
  /** Sends a signal and waits for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code once the process exits. */
  readonly exited: Promise<number | null>;
}

/** Starts pgrelay as a child process and resolves once it logs the address it listens on. */
export function spawnPgrelay(args: readonly string[], timeoutMs = 30_000): Promise<PgrelayProcess> {
  const [command, argv] = pgrelayCommand(["--listen", "127.0.0.1:0", ...args]);
  const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`pgrelay did not report a listen address within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (text: string) => stdout += text);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text: string) => {
      stderr += text;
      const match = /"event":"listening","listen":"([^"]+):(\d+)"/.exec(stderr);
      const admin = /"event":"admin_listening","admin":"([^"]+):(\d+)"/.exec(stderr);
      if (!match || child.pid === undefined || (args.includes("--admin") && !admin)) return;
      clearTimeout(timer);
      const pid = child.pid;
      resolve({
        pid,
        address: { hostname: match[1]!, port: Number(match[2]) },
        admin: admin ? { hostname: admin[1]!, port: Number(admin[2]) } : undefined,
        stderr: () => stderr,
        stdout: () => stdout,
        exited,
        stop(signal = "SIGTERM") {
          // process.kill, not child.kill: Deno's child_process then reports the signal instead of the exit code.
          if (child.exitCode === null && child.signalCode === null) process.kill(pid, signal);
          return exited;
        },
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`pgrelay exited with code ${code} before listening:\n${stderr}`));
    });
  });
}

/** Peak resident memory (VmHWM) and current (VmRSS) of a process, in bytes, from /proc. */
export async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}
