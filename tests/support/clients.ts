/** Runs the stock libpq clients (psql, pgbench) from the server's bin dir against a host/port. */
import { join } from "node:path";
import process from "node:process";
import { findPgBinDir } from "./pg_bin.ts";
import { type ProcessResult, runProcess } from "./process.ts";

/** Connection and process options shared by {@link runPsql} and {@link runPgbench}. */
export interface ClientOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  database?: string;
  /** Text fed to stdin. */
  input?: string;
  /** Extra environment (e.g. PGSSLMODE, PGAPPNAME); applied last. */
  env?: Record<string, string>;
  /** Kill the client and reject after this long (default 30 s). */
  timeoutMs?: number;
  /** Directory of psql/pgbench (default: the same one the test servers use). */
  binDir?: string;
  /** A libpq to load instead of the system's (put first in LD_LIBRARY_PATH), e.g. `libpq18Dir()` or `pg.libDir`. */
  libDir?: string | undefined;
}

const DEFAULT_CLIENT_TIMEOUT_MS = 30_000;

/** `psql -X -v ON_ERROR_STOP=1 ...args` with PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE set. */
export function runPsql(args: string[], opts: ClientOptions): Promise<ProcessResult> {
  return runClient("psql", ["-X", "-v", "ON_ERROR_STOP=1", ...args], opts);
}

/** `pgbench ...args` with the same connection environment as {@link runPsql}. */
export function runPgbench(args: string[], opts: ClientOptions): Promise<ProcessResult> {
  return runClient("pgbench", args, opts);
}

function runClient(tool: string, args: string[], opts: ClientOptions): Promise<ProcessResult> {
  const binary = join(opts.binDir ?? findPgBinDir(), tool);
  const runOpts = { env: clientEnv(opts), timeoutMs: opts.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS };
  return runProcess(binary, args, opts.input === undefined ? runOpts : { ...runOpts, input: opts.input });
}

/** Inherited environment without stray PG* variables, plus the connection settings. */
export function clientEnv(opts: ClientOptions): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("PG")) env[key] = value;
  }
  env["LC_ALL"] = "C";
  env["PGHOST"] = opts.host;
  env["PGPORT"] = String(opts.port);
  env["PGUSER"] = opts.user;
  env["PGDATABASE"] = opts.database ?? "postgres";
  env["PGCONNECT_TIMEOUT"] = "10";
  env["PGPASSFILE"] = "/nonexistent/pgrelay-test-pgpass"; // ignore ~/.pgpass
  if (opts.password !== undefined) env["PGPASSWORD"] = opts.password;
  if (opts.libDir !== undefined) {
    const inherited = env["LD_LIBRARY_PATH"];
    env["LD_LIBRARY_PATH"] = inherited ? `${opts.libDir}:${inherited}` : opts.libDir;
  }
  return { ...env, ...opts.env };
}
