/**
 * Everything the soak starts (child processes, temp dirs, the PostgreSQL cluster) is registered here and
 * removed on a normal end, on an error and on Ctrl-C / SIGTERM.
 */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import process from "node:process";

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const finalizers: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;
let interrupted: NodeJS.Signals | undefined;
const interruptListeners: (() => void)[] = [];

/** Remembers a child so cleanup kills it; it is forgotten once it exits. */
export function trackChild<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once("exit", () => children.delete(child));
  child.once("error", () => children.delete(child));
  return child;
}

export function trackDir(dir: string): string {
  dirs.add(dir);
  return dir;
}

/** An async step of cleanup (e.g. stopping PostgreSQL), run after the children are gone. */
export function onCleanup(step: () => Promise<void>): void {
  finalizers.push(step);
}

/** The signal that interrupted the run, if any. */
export function interruptedBy(): NodeJS.Signals | undefined {
  return interrupted;
}

/** Called once when SIGINT/SIGTERM arrives (the load loops stop early). */
export function onInterrupt(listener: () => void): void {
  interruptListeners.push(listener);
}

function killAll(signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(child.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM to every child, SIGKILL after 5 s, then the finalizers and the temp dirs. Idempotent. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    killAll("SIGTERM");
    const deadline = Date.now() + 5_000;
    while (children.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    killAll("SIGKILL");
    for (const step of finalizers.splice(0).reverse()) {
      await step().catch((err) => process.stderr.write(`[soak] cleanup step failed: ${err}\n`));
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    dirs.clear();
  })();
  return cleaning;
}

/** Installs the exit and signal hooks (once). */
export function installCleanupHooks(): void {
  process.on("exit", () => {
    killAll("SIGKILL");
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.on(signal, () => {
      if (interrupted !== undefined) return;
      interrupted = signal;
      process.stderr.write(`[soak] ${signal}: stopping the load, pgrelay and PostgreSQL\n`);
      for (const listener of interruptListeners) listener();
      void cleanup().finally(() => process.exit(code));
    });
  }
}
