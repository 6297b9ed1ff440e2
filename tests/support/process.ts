/** Async child-process runner with a hard timeout (never blocks the event loop). */
import { spawn } from "node:child_process";
import process from "node:process";

/** Exit status and captured output of a finished child process. */
export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link runProcess}. */
export interface RunProcessOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
  cwd?: string;
}

/** Default timeout for helper processes. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * Runs `command args` asynchronously, feeding `input` on stdin. Resolves with the exit code
 * (-1 when killed by a signal); rejects on spawn failure or timeout (the child is SIGKILLed and
 * the error carries the output captured so far).
 */
export function runProcess(
  command: string,
  args: readonly string[],
  opts: RunProcessOptions = {},
): Promise<ProcessResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(() =>
        reject(
          new Error(
            `${describeCommand(command, args)} timed out after ${timeoutMs} ms\n` +
              `--- stdout so far ---\n${stdout}\n--- stderr so far ---\n${stderr}`,
          ),
        )
      );
    }, timeoutMs);
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (s: string) => (stdout += s));
    child.stderr.on("data", (s: string) => (stderr += s));
    child.stdin.on("error", () => {/* child exited before reading stdin */});
    child.on(
      "error",
      (err) => finish(() => reject(new Error(`${describeCommand(command, args)}: ${err.message}`))),
    );
    child.on("close", (code) => finish(() => resolve({ code: code ?? -1, stdout, stderr })));
    child.stdin.end(opts.input ?? "");
  });
}

/** Like {@link runProcess} but rejects (with all output) unless the exit code is 0. */
export async function runChecked(
  command: string,
  args: readonly string[],
  opts: RunProcessOptions = {},
): Promise<ProcessResult> {
  const result = await runProcess(command, args, opts);
  if (result.code !== 0) {
    throw new Error(
      `${describeCommand(command, args)} exited with code ${result.code}\n` +
        `--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`,
    );
  }
  return result;
}

/** Human-readable command line for error messages. */
export function describeCommand(command: string, args: readonly string[]): string {
  return [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}
