/** Locates the PostgreSQL server binaries used by the integration tests. */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const DEBIAN_ROOT = "/usr/lib/postgresql";

let cached: string | undefined;

/**
 * Returns the directory holding `initdb`, `pg_ctl`, `psql` and `pgbench`:
 * `$PG_BIN` when set, else the highest-version `/usr/lib/postgresql/<v>/bin`.
 */
export function findPgBinDir(): string {
  if (cached !== undefined) return cached;
  const fromEnv = process.env["PG_BIN"];
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!existsSync(join(fromEnv, "initdb"))) {
      throw new Error(`PG_BIN=${fromEnv} does not contain initdb`);
    }
    cached = fromEnv;
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
  cached = join(DEBIAN_ROOT, best, "bin");
  return cached;
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
