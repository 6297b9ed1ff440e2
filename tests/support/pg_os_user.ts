/** Running PostgreSQL tools as the `postgres` OS user when the test process is root. */
import { readFileSync } from "node:fs";
import { chown } from "node:fs/promises";
import process from "node:process";

/** uid/gid of an OS account. */
export interface OsAccount {
  uid: number;
  gid: number;
}

const ACCOUNT = "postgres";
let cached: OsAccount | null | undefined;

/** True when the test process runs as root and must drop to `postgres` for server tools. */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The `postgres` account from /etc/passwd, or null when not running as root. */
export function postgresAccount(): OsAccount | null {
  if (cached !== undefined) return cached;
  if (!isRoot()) return (cached = null);
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${ACCOUNT}:`));
  const fields = line?.split(":");
  const uid = Number.parseInt(fields?.[2] ?? "", 10);
  const gid = Number.parseInt(fields?.[3] ?? "", 10);
  if (Number.isNaN(uid) || Number.isNaN(gid)) {
    throw new Error(
      `Running as root but there is no '${ACCOUNT}' OS user; PostgreSQL refuses to run as root. ` +
        "Create it (apt-get install postgresql does) or run the tests as an unprivileged user.",
    );
  }
  return (cached = { uid, gid });
}

/** Gives `path` to the postgres account (no-op unless root). */
export async function chownToPostgres(path: string): Promise<void> {
  const account = postgresAccount();
  if (account !== null) await chown(path, account.uid, account.gid);
}

/** Wraps a command line so it runs as `postgres` (via runuser) when we are root. */
export function asPostgres(command: string, args: readonly string[]): [string, string[]] {
  if (postgresAccount() === null) return [command, [...args]];
  return ["runuser", ["-u", ACCOUNT, "--", command, ...args]];
}
