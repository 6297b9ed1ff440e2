/** The soak's pass/fail checks for one runtime, each with the numbers that decided it. */
import { RSS_GROWTH_LIMIT_BYTES, RSS_WINDOW_SAMPLES } from "./settings.ts";
import { type RuntimeResult, sessionCount } from "./soak_runtime.ts";
import { CLIENT_KINDS } from "./tally.ts";

export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

export interface RssFigures {
  /** Median of the first RSS_WINDOW_SAMPLES samples after warm-up: the level after warm-up. */
  level: number;
  /** Highest median of RSS_WINDOW_SAMPLES consecutive samples after warm-up (what is judged). */
  maxWindow: number;
  /** When (ms since load start) that window ended. */
  maxWindowAt: number;
  /** Highest single sample after warm-up (a GC peak shows here, not in the judged figure). */
  max: number;
  /** The last sample. */
  last: number;
}

export function rssFigures(result: RuntimeResult): RssFigures | undefined {
  // Load and settle samples after warm-up; the settle samples show whether memory comes back.
  const after = result.samples.filter((s) => s.at >= result.settings.warmupMs);
  if (after.length < RSS_WINDOW_SAMPLES) return undefined;
  const median = (from: number): number => {
    const window = after.slice(from, from + RSS_WINDOW_SAMPLES).map((s) => s.rss).sort((a, b) => a - b);
    return window[Math.floor(window.length / 2)]!;
  };
  const level = median(0);
  let maxWindow = level;
  let maxWindowAt = after[RSS_WINDOW_SAMPLES - 1]!.at;
  for (let from = 1; from + RSS_WINDOW_SAMPLES <= after.length; from++) {
    const m = median(from);
    if (m > maxWindow) {
      maxWindow = m;
      maxWindowAt = after[from + RSS_WINDOW_SAMPLES - 1]!.at;
    }
  }
  let max = 0;
  for (const s of after) max = Math.max(max, s.rss);
  return { level, maxWindow, maxWindowAt, max, last: after.at(-1)!.rss };
}

export function checks(result: RuntimeResult): Check[] {
  const out: Check[] = [];
  const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;

  const alive = result.diedEarly === undefined && result.samplerError === undefined;
  out.push({
    name: "pgrelay ran to the end",
    pass: alive,
    detail: result.diedEarly ?? result.samplerError ?? `pid ${result.pid} alive until the end of the soak`,
  });

  const rss = rssFigures(result);
  out.push(
    rss === undefined
      ? { name: "RSS after warm-up", pass: false, detail: "no RSS sample after warm-up (run too short?)" }
      : {
        name: "RSS after warm-up",
        pass: rss.maxWindow - rss.level <= RSS_GROWTH_LIMIT_BYTES,
        detail: `level ${mib(rss.level)}, highest ${RSS_WINDOW_SAMPLES}-s median ${mib(rss.maxWindow)} ` +
          `(+${mib(rss.maxWindow - rss.level)}, limit +${mib(RSS_GROWTH_LIMIT_BYTES)}) in the window ending ` +
          `+${Math.round(rss.maxWindowAt / 1000)} s; single samples: max ${mib(rss.max)}, last ${mib(rss.last)}`,
      },
  );

  const final = result.finalFds;
  const sessions = typeof result.openSessions === "string"
    ? result.openSessions
    : Object.entries(result.openSessions).map(([phase, n]) => `${phase}=${n}`).join(" ");
  const settle = `${Math.round((result.settledAt - result.loadEndedAt) / 1000)} s after the load`;
  out.push({
    name: "fds back to baseline",
    pass: final !== undefined && final <= result.baseline.fds,
    detail: `baseline ${result.baseline.fds}, max ${Math.max(...result.samples.map((s) => s.fds))}, final ` +
      `${final ?? "?"} ${settle}`,
  });
  // A session object can outlive its sockets (no fd left, memory held): count what pgrelay still tracks.
  out.push({
    name: "no session left",
    pass: sessionCount(result.openSessions) === 0,
    detail: `pgrelay_client_connections_active ${settle}: ${sessions}`,
  });

  for (const kind of CLIENT_KINDS) {
    const count = result.tally.get(kind);
    out.push({
      name: `${kind}: no unexpected errors`,
      pass: count.unexpected === 0 && count.ops > 0,
      detail: count.ops === 0 ? "no operation ran" : `${count.unexpected} unexpected of ${count.ops} operations`,
    });
  }

  const exit = result.exit;
  out.push({
    name: "clean exit on SIGTERM",
    pass: exit !== undefined && exit.code === 0,
    detail: exit === undefined ? "not stopped by the soak" : `code ${exit.code}, signal ${exit.signal}`,
  });
  return out;
}
