/** The soak's printed summary: per runtime, operations and errors per client kind, RSS and fds, the checks. */
import { RSS_GROWTH_LIMIT_BYTES } from "./settings.ts";
import type { RuntimeResult } from "./soak_runtime.ts";
import { CLIENT_KINDS, expectedTotal } from "./tally.ts";
import { type Check, checks, rssFigures } from "./verdict.ts";

const LABEL = { deno: "Deno", bun: "Bun" } as const;
const TIMELINE_POINTS = 10;

const mib = (n: number): string => (n / 1048576).toFixed(1);

export function report(results: readonly RuntimeResult[]): { text: string; pass: boolean } {
  const out: string[] = [];
  let pass = true;
  const verdicts = new Map<RuntimeResult, Check[]>();
  for (const result of results) {
    const list = checks(result);
    verdicts.set(result, list);
    if (list.some((c) => !c.pass)) pass = false;
    out.push(...runtimeSection(result, list));
  }
  out.push(
    "",
    "## Soak summary",
    "",
    "| runtime | load | ops | expected errors | unexpected errors | RSS after warm-up MB | max RSS MB (30-s median / sample) | growth MB | fds baseline → final | verdict |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
  );
  for (const result of results) {
    const rss = rssFigures(result);
    let ops = 0, expected = 0, unexpected = 0;
    for (const kind of CLIENT_KINDS) {
      const c = result.tally.get(kind);
      ops += c.ops;
      expected += expectedTotal(c);
      unexpected += c.unexpected;
    }
    const failed = verdicts.get(result)!.filter((c) => !c.pass).map((c) => c.name);
    out.push(
      `| ${LABEL[result.runtime]} | ${Math.round(result.loadEndedAt / 1000)} s | ${ops} | ${expected} | ${unexpected} | ` +
        `${rss ? mib(rss.level) : "?"} | ${rss ? `${mib(rss.maxWindow)} / ${mib(rss.max)}` : "?"} | ` +
        `${rss ? mib(rss.maxWindow - rss.level) : "?"} | ` +
        `${result.baseline.fds} → ${result.finalFds ?? "?"} | ${failed.length === 0 ? "PASS" : `FAIL (${failed.join("; ")})`} |`,
    );
  }
  out.push("", `soak: ${pass ? "PASS" : "FAIL"}`);
  return { text: out.join("\n") + "\n", pass };
}

function runtimeSection(result: RuntimeResult, list: readonly Check[]): string[] {
  const s = result.settings;
  const out = [
    "",
    `## pgrelay on ${LABEL[result.runtime]} (pid ${result.pid})`,
    "",
    `load ${Math.round(result.loadEndedAt / 1000)} s (SOAK_MINUTES=${s.minutes}), warm-up ${Math.round(s.warmupMs / 1000)} s, ` +
      `then ${Math.round((result.settledAt - result.loadEndedAt) / 1000)} s for idle sessions to close; ` +
      `baseline before the load: ${mib(result.baseline.rss)} MB RSS, ${result.baseline.fds} fds`,
    "",
    "| client kind | ops | expected (injected) errors | unexpected errors |",
    "|---|---:|---:|---:|",
  ];
  for (const kind of CLIENT_KINDS) {
    const c = result.tally.get(kind);
    out.push(`| ${kind} | ${c.ops} | ${expectedTotal(c)} | ${c.unexpected} |`);
  }
  out.push("", "injected outcomes:");
  for (const kind of CLIENT_KINDS) {
    const reasons = [...result.tally.get(kind).expected].sort((a, b) => b[1] - a[1]);
    if (reasons.length > 0) out.push(`  ${kind}: ${reasons.map(([reason, n]) => `${reason} ×${n}`).join("; ")}`);
  }
  out.push("", `RSS MB / fds over time (sample every ${Math.round(result.loadEndedAt / TIMELINE_POINTS / 1000)} s):`);
  out.push(`  ${timeline(result).join("  ")}`);
  const unexpected = CLIENT_KINDS.flatMap((kind) => result.tally.get(kind).messages.map((m) => `  ${kind}: ${m}`));
  if (unexpected.length > 0) out.push("", "unexpected errors (first few per kind):", ...unexpected);
  const events = [...result.proc.events].filter(([key]) => !key.startsWith("debug")).sort((a, b) => b[1] - a[1]);
  out.push("", `pgrelay log events: ${events.map(([key, n]) => `${key} ×${n}`).join(", ")}`);
  if (result.proc.problemLines.length > 0) {
    out.push("pgrelay error-level and non-JSON lines (first few):", ...result.proc.problemLines.slice(0, 12).map((l) => `  ${l}`));
  }
  out.push("", "checks:");
  for (const c of list) out.push(`  ${c.pass ? "PASS" : "FAIL"}  ${c.name}: ${c.detail}`);
  if (list.some((c) => !c.pass)) out.push(...hints(result, list));
  return out;
}

function timeline(result: RuntimeResult): string[] {
  const points: string[] = [];
  const step = result.loadEndedAt / TIMELINE_POINTS;
  let next = 0;
  for (const sample of result.samples) {
    if (sample.at >= next) {
      points.push(`+${Math.round(sample.at / 1000)}s ${mib(sample.rss)}/${sample.fds}`);
      next += step;
    }
  }
  const last = result.samples.at(-1);
  if (last !== undefined) points.push(`end ${mib(last.rss)}/${last.fds}`);
  return points;
}

/** Where to look when a check fails. */
function hints(result: RuntimeResult, list: readonly Check[]): string[] {
  const out = ["", "where to look:"];
  const failed = new Set(list.filter((c) => !c.pass).map((c) => c.name));
  if (result.diedEarly !== undefined) {
    out.push(`  ${result.diedEarly}; the errors after that follow from it. pgrelay's last log lines:`);
    out.push(...result.proc.tail.map((line) => `    ${line.length > 400 ? `${line.slice(0, 400)}…` : line}`));
    return out;
  }
  if (result.leftovers.size > 0) {
    out.push("  sessions pgrelay never ended (session_start without session_end in its log), by what their client did:");
    for (const [label, n] of [...result.leftovers].sort((a, b) => b[1] - a[1])) {
      out.push(`    ${label}: ${n}; one of them in pgrelay's log:`);
      for (const line of result.leftoverExamples.get(label) ?? []) {
        out.push(`      ${line.length > 300 ? `${line.slice(0, 300)}…` : line}`);
      }
    }
  }
  if (typeof result.backendsLeft === "string") {
    out.push(`  PostgreSQL backends left: ${result.backendsLeft}`);
  } else if (result.backendsLeft.size > 0) {
    out.push("  PostgreSQL backends of this runtime's clients still connected after the settle, by application_name:");
    for (const [name, n] of [...result.backendsLeft].sort((a, b) => b[1] - a[1])) out.push(`    ${name}: ${n}`);
  }
  const messages = CLIENT_KINDS.flatMap((kind) => result.tally.get(kind).messages).join("\n");
  if (/53300|too many clients|remaining connection slots/.test(messages)) {
    out.push("  PostgreSQL ran out of connections: backends held by sessions pgrelay never ended (above) exhaust max_connections");
  }
  if ((failed.has("fds back to baseline") || failed.has("no session left")) && typeof result.openSessions !== "string") {
    const open = Object.entries(result.openSessions).filter(([, n]) => n > 0);
    out.push(
      open.length > 0
        ? `  sessions never closed (${open.map(([p, n]) => `${n} in ${p}`).join(", ")}): a client path that ends without freeing its session`
        : "  no session is open, yet fds stay above the baseline: sockets or files closed without their fd",
    );
  }
  if (failed.has("RSS after warm-up")) {
    out.push(`  RSS grew more than ${mib(RSS_GROWTH_LIMIT_BYTES)} MB after warm-up: see the timeline above (steady growth = a leak per operation)`);
  }
  for (const kind of CLIENT_KINDS) {
    if (failed.has(`${kind}: no unexpected errors`)) out.push(`  ${kind}: see the unexpected errors above and the pgrelay log lines`);
  }
  return out;
}
