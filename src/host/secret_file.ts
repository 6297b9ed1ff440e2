/**
 * Reading a file that may hold passwords (auth.file) only when group and others cannot, as libpq checks
 * `.pgpass` (fe-connect.c, passwordFromFile) and PostgreSQL its server key (be-secure-common.c,
 * check_ssl_key_file): mode u=rw (0600) or less; a file owned by root may also be read by its group
 * (0640, e.g. `root:pgrelay`), so a service user can read it without owning it.
 * https://www.postgresql.org/docs/current/libpq-pgpass.html
 */
import { open } from "node:fs/promises";
import process from "node:process";

/** What {@link secretFileProblem} looks at, from `fs.Stats`. */
export interface FileFacts {
  mode: number;
  uid: number;
  isFile: boolean;
}

const PERMISSION_BITS = 0o777;

/** A shell word for `path`: as it is when it needs no quoting, else in single quotes. */
function shellWord(path: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

/**
 * Why the file at `path` must not be used to hold secrets, with the command that fixes it; undefined when
 * it is fine. Group read is allowed only for a file owned by root (uid 0); group write or execute and any
 * access by others never are.
 */
export function secretFileProblem(path: string, facts: FileFacts): string | undefined {
  if (!facts.isFile) return "is not a regular file";
  const permissions = facts.mode & PERMISSION_BITS;
  const forbidden = facts.uid === 0 ? 0o037 : 0o077;
  if ((permissions & forbidden) === 0) return undefined;
  const who = (permissions & 0o007) !== 0 ? "others" : "its group";
  return `${who} can access it (mode 0${
    permissions.toString(8).padStart(3, "0")
  }), and it can hold passwords; ` +
    `run: chmod 600 ${shellWord(path)}` +
    (facts.uid === 0 ? " (or 640, owned by root, to let its group read it)" : "");
}

/**
 * Reads a secrets file as UTF-8 after checking its permissions on the open file (no race between the
 * check and the read). Throws an Error whose message says what is wrong (a permission problem, or the
 * system's reason such as ENOENT, with `code` set).
 */
export async function readSecretFile(path: string): Promise<string> {
  const handle = await open(path, "r");
  try {
    if (process.platform !== "win32") {
      const stats = await handle.stat();
      const problem = secretFileProblem(path, { mode: stats.mode, uid: stats.uid, isFile: stats.isFile() });
      if (problem !== undefined) throw new Error(problem);
    }
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}
