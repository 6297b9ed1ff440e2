/**
 * Makes sure test clusters never outlive the test process: a synchronous process 'exit' /
 * global 'unload' handler (clean exits, process.exit) plus a detached shell watchdog that
 * also covers uncaught errors under Deno, Ctrl-C and SIGKILL of the test runtime (within ~1 s).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { asPostgres } from "./pg_os_user.ts";
import { postmasterPid, processTree, signalAll } from "./pg_process.ts";

/** A registered temp directory (optionally holding a cluster) to clean up if the owner forgets. */
export interface OrphanGuard {
  /** The owner cleaned up properly: disarm the exit handler and stop the watchdog. */
  release(): void;
}

interface Entry {
  tempDir: string;
  dataDir: string | undefined;
  binDir: string;
  watchdogPid: number | undefined;
}

const live = new Set<Entry>();
let exitHookInstalled = false;

/**
 * Guards `tempDir`; when `dataDir` is given, a server running there is stopped with
 * `pg_ctl stop -m immediate` before the directory is removed.
 */
export function guardTempDir(tempDir: string, dataDir: string | undefined, binDir: string): OrphanGuard {
  const entry: Entry = { tempDir, dataDir, binDir, watchdogPid: spawnWatchdog(tempDir, dataDir, binDir) };
  live.add(entry);
  installExitHook();
  return {
    release(): void {
      if (!live.delete(entry)) return;
      killWatchdog(entry);
    },
  };
}

/** Minimal view of a global EventTarget (Deno fires "unload" where `deno test` skips process 'exit'). */
interface UnloadTarget {
  addEventListener?: (type: string, listener: () => void) => void;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanupAll = (): void => {
    for (const entry of [...live]) {
      live.delete(entry);
      killWatchdog(entry);
      stopImmediately(entry);
    }
  };
  process.on("exit", cleanupAll);
  (globalThis as unknown as UnloadTarget).addEventListener?.("unload", cleanupAll);
}

/** Synchronous last-resort cleanup (runs inside the 'exit' event, so no async work). */
function stopImmediately(entry: Entry): void {
  try {
    if (entry.dataDir !== undefined && existsSync(join(entry.dataDir, "postmaster.pid"))) {
      // A test may have left the server SIGSTOPped (sigstop()): it must run to hear the stop.
      const pid = postmasterPid(entry.dataDir);
      if (pid !== undefined) signalAll(processTree(pid), "SIGCONT");
      const [cmd, args] = asPostgres(join(entry.binDir, "pg_ctl"), [
        "-D",
        entry.dataDir,
        "-m",
        "immediate",
        "-w",
        "stop",
      ]);
      spawnSync(cmd, args, { stdio: "ignore", cwd: entry.tempDir, timeout: 30_000 });
    }
    rmSync(entry.tempDir, { recursive: true, force: true });
  } catch {
    // best effort during process exit
  }
}

/** Shell loop polling our pid; once we are gone it stops the server and removes the directory. */
function spawnWatchdog(tempDir: string, dataDir: string | undefined, binDir: string): number | undefined {
  const [pgCtl, pgCtlArgs] = asPostgres(join(binDir, "pg_ctl"), [
    "-D",
    dataDir ?? "",
    "-m",
    "immediate",
    "stop",
  ]);
  const body = [
    'pid="$1"; dir="$2"; data="$3"; shift 3',
    'while kill -0 "$pid" 2>/dev/null; do sleep 1; done',
    // A server left SIGSTOPped by a test must run again to hear the stop: SIGCONT it and its children.
    'if [ -n "$data" ] && [ -f "$data/postmaster.pid" ]; then',
    '  pm=$(head -n 1 "$data/postmaster.pid"); kill -CONT "$pm" 2>/dev/null; pkill -CONT -P "$pm" 2>/dev/null',
    '  (cd "$dir" && "$@") >/dev/null 2>&1',
    "fi",
    'rm -rf "$dir"',
  ].join("\n");
  try {
    const child = spawn("sh", [
      "-c",
      body,
      "pgrelay-watchdog",
      String(process.pid),
      tempDir,
      dataDir ?? "",
      pgCtl,
      ...pgCtlArgs,
    ], {
      detached: true,
      stdio: "ignore",
    });
    child.on("error", () => {/* watchdog is best effort */});
    child.unref();
    return child.pid;
  } catch {
    return undefined;
  }
}

function killWatchdog(entry: Entry): void {
  if (entry.watchdogPid === undefined) return;
  try {
    process.kill(-entry.watchdogPid, "SIGKILL"); // its own process group (detached)
  } catch {
    // already gone
  }
  entry.watchdogPid = undefined;
}
