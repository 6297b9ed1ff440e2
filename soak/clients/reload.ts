/** SIGHUP reloads every few seconds, each after rewriting the config with a small change; each must be logged as applied. */
import { type SoakConfig, writeConfig } from "../config_file.ts";
import type { LoopSpec } from "../load_loop.ts";
import { sleep } from "../load_loop.ts";
import type { PgrelayProcess } from "../pgrelay_process.ts";

const APPLIED_WITHIN_MS = 10_000;

export function reloadLoop(proc: PgrelayProcess, config: SoakConfig, everySeconds: number): LoopSpec {
  return {
    kind: "reload",
    pauseMs: everySeconds * 1000,
    timeoutMs: APPLIED_WITHIN_MS + 5_000,
    async op(_scope, i) {
      writeConfig(config, i + 1);
      const applied = proc.count("config_reloaded");
      const failed = proc.count("config_reload_failed");
      proc.signal("SIGHUP");
      const deadline = Date.now() + APPLIED_WITHIN_MS;
      while (Date.now() < deadline) {
        if (proc.count("config_reload_failed") > failed) {
          const line = [...proc.tail, ...proc.problemLines].findLast((l) => l.includes("config_reload_failed"));
          throw new Error(`config_reload_failed: ${line ?? "(line not kept)"}`);
        }
        if (proc.count("config_reloaded") > applied) return 1;
        if (proc.exit !== undefined) throw new Error(`pgrelay exited (code ${proc.exit.code}, signal ${proc.exit.signal})`);
        await sleep(50);
      }
      throw new Error(`no config_reloaded within ${APPLIED_WITHIN_MS} ms of SIGHUP generation ${i + 1}`);
    },
  };
}
