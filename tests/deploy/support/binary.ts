/** Builds pgrelay's single binaries with the scripts `make build-bun` / `make build` run, and starts them. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { PROJECT_ROOT } from "../../support/pgrelay.ts";
import { type ProcessResult, runProcess } from "../../support/process.ts";

/** scripts/build_bun.sh or build_deno.sh OUTFILE, with `env` replacing this process's environment. */
export function buildBinary(
  runtime: "bun" | "deno",
  outfile: string,
  env: Record<string, string | undefined> = process.env,
): Promise<ProcessResult> {
  return runProcess("bash", [join(PROJECT_ROOT, "scripts", `build_${runtime}.sh`), outfile], { env, timeoutMs: 120_000 });
}

export interface RunningBinary {
  readonly port: number;
  /** The `listening` log line, parsed. */
  readonly listening: Record<string, unknown>;
  stderr(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `binary args` and resolves once it logs `listening` (its port comes from that line). */
export function startBinary(binary: string, args: readonly string[], timeoutMs = 30_000): Promise<RunningBinary> {
  const child = spawn(binary, [...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${binary} did not log "listening" within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text: string) => {
      stderr += text;
      const line = stderr.split("\n").find((l) => l.includes('"event":"listening"'));
      if (line === undefined || !line.endsWith("}")) return;
      clearTimeout(timer);
      const listening = JSON.parse(line) as Record<string, unknown>;
      const port = Number(/:(\d+)$/.exec(String(listening["listen"]))?.[1]);
      resolve({
        port,
        listening,
        stderr: () => stderr,
        stop() {
          if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
          return exited;
        },
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${binary} exited with ${code} before listening:\n${stderr}`));
    });
  });
}
