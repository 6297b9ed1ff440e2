/**
 * One runtime's soak: start pgrelay, check it works, take the fd baseline, run every client kind until the
 * load ends while sampling RSS and fds, let idle sessions close, then stop pgrelay with SIGTERM.
 */
import { join } from "node:path";
import type { TestPki } from "../tests/support/certs.ts";
import type { PostgresUsers } from "../tests/support/postgres.ts";
import { cancelLoop } from "./clients/cancel.ts";
import { copyLoop } from "./clients/copy.ts";
import { malformedLoop } from "./clients/malformed.ts";
import { pgbenchLoop } from "./clients/pgbench.ts";
import { reloadLoop } from "./clients/reload.ts";
import { tlsLoop } from "./clients/tls_session.ts";
import { vanishLoop } from "./clients/vanish.ts";
import { type SoakConfig, writeConfig } from "./config_file.ts";
import { type LoadContext, runLoop, Scope, sleep } from "./load_loop.ts";
import { type PgrelayProcess, startPgrelay } from "./pgrelay_process.ts";
import { PortLabels } from "./port_labels.ts";
import { fdsOf, type Sample, Sampler } from "./sampler.ts";
import { FD_SETTLE_MS, HOST, type Runtime, type SoakSettings } from "./settings.ts";
import { CLIENT_KINDS, Tally } from "./tally.ts";
import { openSession, simpleQuery } from "./wire.ts";

export interface RuntimeResult {
  runtime: Runtime;
  pid: number;
  settings: SoakSettings;
  tally: Tally;
  /** fds and RSS right before the load, pgrelay idle after a smoke test. */
  baseline: { fds: number; rss: number };
  samples: Sample[];
  /** ms from load start to the end of the load (all loops done) and to the end of the fd settle. */
  loadEndedAt: number;
  settledAt: number;
  finalFds: number | undefined;
  /** pgrelay_client_connections_active by phase at the end, or why it could not be read. */
  openSessions: Record<string, number> | string;
  /** Sessions pgrelay never ended (its log), by what their client was doing (the scope label). */
  leftovers: Map<string, number>;
  /** For each label of `leftovers`, the log lines of one such session (its session_start first). */
  leftoverExamples: Map<string, string[]>;
  /** Backends of this runtime's clients still connected to PostgreSQL after the settle, by application_name. */
  backendsLeft: Map<string, number> | string;
  samplerError: string | undefined;
  /** pgrelay died before we stopped it. */
  diedEarly: string | undefined;
  /** Exit code after our SIGTERM (0 expected). */
  exit: { code: number | null; signal: string | null } | undefined;
  proc: PgrelayProcess;
}

export interface SoakEnvironment {
  upstreamPort: number;
  users: PostgresUsers;
  pki: TestPki;
  dir: string;
  signal: AbortSignal;
  progress: (message: string) => void;
  /** PostgreSQL backends still connected whose application_name starts with `prefix`, by application_name. */
  backendsOf: (prefix: string) => Promise<Map<string, number> | string>;
}

export async function soakRuntime(runtime: Runtime, settings: SoakSettings, env: SoakEnvironment): Promise<RuntimeResult> {
  const config: SoakConfig = { path: join(env.dir, `pgrelay-${runtime}.yaml`), upstreamPort: env.upstreamPort, pki: env.pki };
  writeConfig(config, 0);
  const ports = new PortLabels();
  const portOf = (client: string): number => Number(/:(\d+)$/.exec(client)?.[1]);
  const proc = await startPgrelay(runtime, config.path);
  env.progress(`${runtime}: pgrelay pid ${proc.pid} on ${HOST}:${proc.port} (admin ${proc.adminPort})`);
  const tally = new Tally((line) => env.progress(`${runtime}: unexpected error ${line}`));
  const smokeCtx: LoadContext = {
    label: runtime,
    port: proc.port,
    pki: env.pki,
    users: env.users,
    tally,
    endsAt: Date.now(),
    signal: env.signal,
    ports,
  };
  await smoke(smokeCtx).catch((err) => {
    throw new Error(`${runtime}: smoke test through pgrelay failed: ${err instanceof Error ? err.message : err}\n${proc.tail.join("\n")}`);
  });
  await sleep(2000, env.signal);
  const baseline = { fds: fdsOf(proc.pid), rss: 0 };
  const origin = Date.now();
  // The load stops early on Ctrl-C, and when pgrelay dies (every later operation would only be refused).
  const stopLoad = new AbortController();
  const onAbort = (): void => stopLoad.abort();
  env.signal.addEventListener("abort", onAbort, { once: true });
  const ctx: LoadContext = { ...smokeCtx, endsAt: origin + settings.loadMs, signal: stopLoad.signal };
  const sampler = new Sampler(proc.pid, origin);
  sampler.start();
  baseline.rss = sampler.samples[0]?.rss ?? 0;
  env.progress(`${runtime}: load for ${settings.minutes} min, baseline ${baseline.fds} fds, ${mb(baseline.rss)} RSS`);

  let diedEarly: string | undefined;
  let stopping = false;
  void proc.exited.then(() => {
    if (stopping) return;
    diedEarly ??= `pgrelay exited at +${Math.round((Date.now() - origin) / 1000)} s of the load ` +
      `(code ${proc.exit?.code}, signal ${proc.exit?.signal})`;
    env.progress(`${runtime}: ${diedEarly}; stopping this runtime's load`);
    stopLoad.abort();
  });
  const ticker = setInterval(() => {
    const last = sampler.samples.at(-1);
    const done = Math.min(100, Math.round(((Date.now() - origin) / settings.loadMs) * 100));
    if (last !== undefined) env.progress(`${runtime}: ${done}% RSS ${mb(last.rss)}, ${last.fds} fds, ${unexpectedSoFar(tally)} unexpected errors`);
  }, Math.max(10_000, settings.loadMs / 10));

  await Promise.all([
    runLoop(ctx, pgbenchLoop(ctx, settings.pgbenchRate)),
    runLoop(ctx, copyLoop(ctx)),
    runLoop(ctx, cancelLoop(ctx)),
    runLoop(ctx, tlsLoop(ctx)),
    runLoop(ctx, vanishLoop(ctx)),
    runLoop(ctx, malformedLoop(ctx)),
    runLoop(ctx, reloadLoop(proc, config, settings.reloadSeconds)),
  ]);
  clearInterval(ticker);
  env.signal.removeEventListener("abort", onAbort);
  const loadEndedAt = Date.now() - origin;
  env.progress(`${runtime}: load done; waiting up to ${FD_SETTLE_MS / 1000} s for fds to return to ${baseline.fds}`);

  // Settled when the fds are back to the baseline and pgrelay counts no session, or after FD_SETTLE_MS.
  const settleUntil = Date.now() + FD_SETTLE_MS;
  let finalFds: number | undefined;
  let openSessions: Record<string, number> | string = "pgrelay was not running";
  while (!env.signal.aborted && proc.exit === undefined) {
    finalFds = sampler.sampleNow()?.fds;
    openSessions = await activeSessions(proc.adminPort);
    const settled = finalFds !== undefined && finalFds <= baseline.fds && sessionCount(openSessions) === 0;
    if (finalFds === undefined || settled || Date.now() >= settleUntil) break;
    await sleep(1000, env.signal);
  }
  sampler.stop();
  const settledAt = Date.now() - origin;
  const leftovers = new Map<string, number>();
  const leftoverExamples = new Map<string, string[]>();
  for (const open of proc.openSessions.values()) {
    // application_name is exact once the client logged in; before that, the client port's label.
    const label = open.applicationName !== undefined
      ? `application_name "${open.applicationName}"`
      : ports.labelAt(portOf(open.client), open.startedAt) ??
        (portOf(open.client) === 0
          ? `a client pgrelay logged as "${open.client}" (gone before pgrelay read its address)`
          : "unknown (not a raw client of the soak: pgbench?)");
    leftovers.set(label, (leftovers.get(label) ?? 0) + 1);
    if (!leftoverExamples.has(label)) leftoverExamples.set(label, open.lines);
  }

  const backendsLeft = await env.backendsOf(`soak ${runtime} `);

  let exit: RuntimeResult["exit"];
  stopping = true;
  if (proc.exit === undefined) {
    proc.signal("SIGTERM");
    await Promise.race([proc.exited, sleep(15_000)]);
    exit = proc.exit ?? { code: null, signal: "still running 15 s after SIGTERM" };
  }
  return {
    runtime,
    pid: proc.pid,
    settings,
    tally,
    baseline,
    samples: sampler.samples,
    loadEndedAt,
    settledAt,
    finalFds,
    openSessions,
    leftovers,
    leftoverExamples,
    backendsLeft,
    samplerError: sampler.error,
    diedEarly,
    exit,
    proc,
  };
}

/** One plaintext and one TLS session, so the first of everything (TLS context, JIT) is behind the baseline. */
async function smoke(ctx: LoadContext): Promise<void> {
  for (const tls of [false, true]) {
    const scope = new Scope("smoke test");
    try {
      const { client } = await openSession(ctx, scope, { tls, as: "scram", database: "app" });
      await simpleQuery(client, "select 1");
      client.terminate();
      await client.close();
    } finally {
      scope.dispose();
    }
  }
}

/** Sessions pgrelay counts, all phases (NaN when /metrics could not be read). */
export function sessionCount(open: Record<string, number> | string): number {
  if (typeof open === "string") return Number.NaN;
  let n = 0;
  for (const count of Object.values(open)) n += count;
  return n;
}

async function activeSessions(adminPort: number): Promise<Record<string, number> | string> {
  try {
    const response = await fetch(`http://${HOST}:${adminPort}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await response.text();
    const phases: Record<string, number> = {};
    for (const match of text.matchAll(/^pgrelay_client_connections_active\{phase="(\w+)"\} (\d+)/gm)) {
      phases[match[1]!] = Number(match[2]);
    }
    return phases;
  } catch (err) {
    return `could not read /metrics: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function unexpectedSoFar(tally: Tally): number {
  let n = 0;
  for (const kind of CLIENT_KINDS) n += tally.get(kind).unexpected;
  return n;
}

export function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
