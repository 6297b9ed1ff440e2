/** dpkg for the package tests: one package's state, and dpkg commands that wait out another dpkg's lock. */
import { type ProcessResult, runProcess } from "../../support/process.ts";

/** "installed", "config-files" (removed, not purged) or "absent", from dpkg's status database. */
export async function packageState(name: string): Promise<"installed" | "config-files" | "absent" | string> {
  const result = await runProcess("dpkg-query", ["-W", "-f=${db:Status-Status}", name]);
  if (result.code !== 0 || result.stdout === "" || result.stdout === "not-installed") return "absent";
  return result.stdout;
}

/**
 * `dpkg ARGS`, retried while another dpkg or apt (another test run, an apt-get install) holds the lock; the
 * machine is shared, and dpkg itself does not wait.
 */
export async function dpkg(args: readonly string[], env?: Record<string, string | undefined>): Promise<ProcessResult> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const result = await runProcess("dpkg", [...args], { timeoutMs: 120_000, ...(env ? { env } : {}) });
    const locked = result.code !== 0 && /lock|locked/i.test(result.stderr) && /another process|frontend|dpkg status database/i.test(result.stderr);
    if (!locked || Date.now() > deadline) return result;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}
