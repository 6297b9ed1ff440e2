/** The processes of a running cluster (postmaster and children), for freezing it with SIGSTOP/SIGCONT. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

/** The postmaster's pid from `postmaster.pid` in `dataDir`, or undefined when the server is down. */
export function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(
      readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0] ?? "",
      10,
    );
    return Number.isNaN(pid) ? undefined : pid;
  } catch {
    return undefined;
  }
}

/** `pid` and its direct children (a postmaster's backends and auxiliary processes), from /proc. */
export function processTree(pid: number): number[] {
  const pids = [pid];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // "pid (comm) state ppid ...": comm may contain spaces and parentheses, so split after the last ')'.
      const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] ?? "", 10);
      if (ppid === pid) pids.push(Number.parseInt(entry, 10));
    } catch {
      // the process exited while we looked
    }
  }
  return pids;
}

/** Sends `signal` to every pid, ignoring ones that have already exited. */
export function signalAll(pids: readonly number[], signal: "SIGSTOP" | "SIGCONT"): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}
