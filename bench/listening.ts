/** Waiting for a benchmark's child process to listen, without connecting to it (a probe would count as a session). */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** True once something listens on 127.0.0.1:port. */
export function listens(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return readFileSync("/proc/net/tcp", "utf8").split("\n").some((line) => {
    const cols = line.trim().split(/\s+/);
    return cols[1]?.endsWith(hex) && cols[3] === "0A";
  });
}

/** Resolves once `child` listens on `port`; throws with its output if it exits first or takes over 60 s. */
export async function untilListening(child: ChildProcess, port: number, what: string, output: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!listens(port)) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}:\n${output.join("\n")}`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen within 60 s`);
    await sleep(50);
  }
}
