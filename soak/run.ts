/**
 * pgrelay soak (not part of `make test`): a mix of real and hostile clients through pgrelay on Deno and on
 * Bun for SOAK_MINUTES, sampling pgrelay's RSS and open fds every second. Passes when RSS stays within
 * 16 MB of its level after warm-up, fds return to their baseline once the load stops, and nothing failed
 * except what the soak injected. See "Soak" in README.md.
 *
 *   node_modules/.bin/bun soak/run.ts      (or: make soak SOAK_MINUTES=30 SOAK_RUNTIME=both)
 *
 * Progress goes to stderr; the summary (tables, checks) to stdout; exit status 0 on PASS, 1 on FAIL.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { makeTestPki } from "../tests/support/certs.ts";
import { runPgbench, runPsql } from "../tests/support/clients.ts";
import { startPostgres } from "../tests/support/postgres.ts";
import { cleanup, installCleanupHooks, interruptedBy, onCleanup, onInterrupt, trackDir } from "./cleanup.ts";
import { report } from "./report.ts";
import { HOST, readSettings, RSS_WINDOW_SAMPLES } from "./settings.ts";
import { soakRuntime } from "./soak_runtime.ts";

function progress(message: string): void {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function main(): Promise<boolean> {
  const settings = readSettings();
  if (settings.warmupMs + 2 * RSS_WINDOW_SAMPLES * 1000 > settings.loadMs) {
    throw new Error(
      `SOAK_MINUTES=${settings.minutes} is too short: ${settings.warmupMs / 1000} s of warm-up and two ` +
        `${RSS_WINDOW_SAMPLES}-s RSS windows need at least 1.5 minutes`,
    );
  }
  installCleanupHooks();
  // An error no operation caught (a client library's socket error event, say) is a failure of the soak,
  // reported, never a crash of the driver that would leave the load unjudged.
  for (const event of ["uncaughtException", "unhandledRejection"] as const) {
    process.on(event, (err: unknown) => {
      if (interruptedBy() !== undefined) return;
      driverErrors++;
      progress(`${event} outside any operation: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    });
  }
  const abort = new AbortController();
  onInterrupt(() => abort.abort());

  progress(`starting PostgreSQL (SOAK_MINUTES=${settings.minutes}, SOAK_RUNTIME=${settings.runtimes.join("+")})`);
  const pg = await startPostgres({ conf: { max_connections: "150" } });
  onCleanup(() => pg.stop());
  const pki = await makeTestPki();
  onCleanup(() => pki.cleanup());
  const dir = trackDir(mkdtempSync(join(tmpdir(), "pgrelay-soak-")));

  const direct = { host: HOST, port: pg.port, user: pg.users.trust.user, database: "postgres", timeoutMs: 120_000 };
  const init = await runPgbench(["-i", "-q", "-s", "1"], direct);
  if (init.code !== 0) throw new Error(`pgbench -i failed:\n${init.stderr}`);
  const sink = await runPsql(["-c", "create table soak_sink(i int, t text)"], direct);
  if (sink.code !== 0) throw new Error(`creating soak_sink failed:\n${sink.stderr}`);
  progress(`PostgreSQL on ${HOST}:${pg.port}; pgbench tables ready; the runtimes run at the same time`);

  const results = await Promise.all(
    settings.runtimes.map((runtime) =>
      soakRuntime(runtime, settings, {
        upstreamPort: pg.port,
        users: pg.users,
        pki,
        dir,
        signal: abort.signal,
        progress,
        backendsOf: (prefix) => backendsOf(direct, prefix),
      })
    ),
  );
  if (interruptedBy() !== undefined) return false;
  const { text, pass } = report(results);
  process.stdout.write(text);
  if (driverErrors > 0) {
    process.stdout.write(`soak: FAIL: ${driverErrors} error(s) outside any operation (see stderr)\n`);
    return false;
  }
  return pass;
}

/** Backends in pg_stat_activity whose application_name starts with `prefix`, counted by application_name. */
async function backendsOf(
  direct: { host: string; port: number; user: string; database: string },
  prefix: string,
): Promise<Map<string, number> | string> {
  const literal = `'${prefix.replaceAll("'", "''")}%'`;
  const sql = `select application_name, count(*) from pg_stat_activity where application_name like ${literal} group by 1`;
  const result = await runPsql(["-A", "-t", "-F", "\t", "-c", sql], { ...direct, timeoutMs: 30_000 }).catch((err) => err);
  if (result instanceof Error || result.code !== 0) return `psql failed: ${result instanceof Error ? result.message : result.stderr}`;
  const counts = new Map<string, number>();
  for (const line of result.stdout.split("\n")) {
    const [name, n] = line.split("\t");
    if (name !== undefined && n !== undefined) counts.set(name, Number(n));
  }
  return counts;
}

let driverErrors = 0;
let pass = false;
try {
  pass = await main();
} catch (err) {
  if (interruptedBy() === undefined) progress(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
}
if (interruptedBy() !== undefined) await new Promise(() => {}); // the signal handler exits with 128 + signal
await cleanup();
process.exit(pass ? 0 : 1);
