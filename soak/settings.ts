/** The soak's knobs (environment variables) and the fixed thresholds it judges by. */
import process from "node:process";

export type Runtime = "deno" | "bun";

export interface SoakSettings {
  /** Load time per runtime (both runtimes run at the same time with SOAK_RUNTIME=both). */
  readonly minutes: number;
  readonly runtimes: readonly Runtime[];
  /** Seconds between SIGHUP reloads. */
  readonly reloadSeconds: number;
  /** pgbench's target rate (-R) in transactions per second, per runtime. */
  readonly pgbenchRate: number;
  /** Load ends this long after it started, in ms. */
  readonly loadMs: number;
  /** RSS samples taken before this (ms since load start) are warm-up and not judged. */
  readonly warmupMs: number;
}

/** RSS may rise at most this much above its level right after warm-up. */
export const RSS_GROWTH_LIMIT_BYTES = 16 * 1024 * 1024;
/**
 * RSS is judged on medians of this many consecutive samples (seconds): "the level after warm-up" is the
 * median of the first window after warm-up, and no later window's median may exceed it by more than the
 * limit. A garbage collector's transient peak does not fail the soak; a level that stays up does.
 */
export const RSS_WINDOW_SAMPLES = 30;
/** Warm-up: this share of the run, at least WARMUP_MIN_MS. */
export const WARMUP_SHARE = 0.2;
export const WARMUP_MIN_MS = 30_000;
/** After the load: how long open fds and sessions get to return to baseline and zero (covers startup_timeout). */
export const FD_SETTLE_MS = 30_000;
/** pgrelay's startup_timeout during the soak: stalled handshakes are reaped within it. */
export const STARTUP_TIMEOUT_S = 10;

export const HOST = "127.0.0.1";

export function readSettings(env: NodeJS.ProcessEnv = process.env): SoakSettings {
  const minutes = positiveNumber(env, "SOAK_MINUTES", 30);
  const which = env["SOAK_RUNTIME"] ?? "both";
  const runtimes: Runtime[] = which === "both" ? ["deno", "bun"] : which === "deno" || which === "bun" ? [which] : [];
  if (runtimes.length === 0) throw new Error(`SOAK_RUNTIME must be bun, deno or both, got ${JSON.stringify(which)}`);
  const loadMs = Math.round(minutes * 60_000);
  return {
    minutes,
    runtimes,
    reloadSeconds: positiveNumber(env, "SOAK_RELOAD_SECONDS", 5),
    pgbenchRate: positiveNumber(env, "SOAK_PGBENCH_RATE", 200),
    loadMs,
    warmupMs: Math.max(WARMUP_MIN_MS, Math.round(loadMs * WARMUP_SHARE)),
  };
}

function positiveNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}
