/** pgbench through pgrelay: select-only and simple-update runs in turn, rate-limited, a few seconds each. */
import { runPgbench } from "../../tests/support/clients.ts";
import type { LoadContext, LoopSpec } from "../load_loop.ts";
import { HOST } from "../settings.ts";

/** Longest single pgbench run; the loop starts the next one until the load ends. */
const RUN_SECONDS = 20;

export function pgbenchLoop(ctx: LoadContext, rate: number): LoopSpec {
  return {
    kind: "pgbench",
    pauseMs: 100,
    timeoutMs: (RUN_SECONDS + 60) * 1000,
    async op(_scope, i) {
      const seconds = Math.max(1, Math.min(RUN_SECONDS, Math.floor((ctx.endsAt - Date.now()) / 1000)));
      const mode = i % 2 === 0 ? ["-S"] : ["-b", "simple-update"];
      const result = await runPgbench(
        ["-n", "-c", "2", "-j", "1", "-T", String(seconds), "-R", String(rate), ...mode],
        {
          host: HOST,
          port: ctx.port,
          user: ctx.users.trust.user,
          database: "postgres",
          env: { PGSSLMODE: "disable", PGGSSENCMODE: "disable", PGAPPNAME: `soak ${ctx.label} pgbench` },
          timeoutMs: (seconds + 50) * 1000,
        },
      );
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(result.stdout)?.[1] ?? NaN);
      const failed = Number(/number of failed transactions: (\d+)/.exec(result.stdout)?.[1] ?? 0);
      if (result.code !== 0 || !Number.isFinite(processed) || failed > 0) {
        throw new Error(
          `pgbench ${mode.join(" ")} exited ${result.code}, ${processed} processed, ${failed} failed: ` +
            `${result.stderr.trim().split("\n").slice(-4).join(" | ")}`,
        );
      }
      return processed;
    },
  };
}
