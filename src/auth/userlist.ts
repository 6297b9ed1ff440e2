/**
 * PgBouncer's auth_file ("userlist.txt"): one `"user" "password-or-verifier"` per line. Fields are in
 * double quotes, `""` inside a field is a literal quote, and anything after the second field is ignored,
 * as in PgBouncer's load_auth_file. Blank lines and lines starting with `;` (PgBouncer) or `#` are skipped.
 * https://www.pgbouncer.org/config.html#authentication-file-format
 */
import {
  isMd5Verifier,
  parseScramVerifier,
  SCRAM_VERIFIER_PREFIX,
  type ScramVerifier,
} from "./scram_verifier.ts";

/** What an auth_file holds for one user. */
export type UserlistEntry =
  | { kind: "scram"; verifier: ScramVerifier }
  | { kind: "md5"; hash: string }
  | { kind: "plain"; password: string }
  | { kind: "missing" };

/**
 * Parses an auth_file into user → password-or-verifier. Errors are SyntaxErrors naming the 1-based line.
 * A SCRAM verifier must parse, and a user may appear only once: both mistakes are easier to fix here
 * than at the first login. Password text never appears in the errors.
 */
export function parseUserlist(text: string): Map<string, string> {
  const users = new Map<string, string>();
  const firstLine = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNumber = index + 1;
    const line = raw.trimStart();
    if (line === "" || line.startsWith(";") || line.startsWith("#")) return;
    const fail = (why: string): never => {
      throw new SyntaxError(`auth file line ${lineNumber}: ${why}`);
    };
    const user = readQuoted(line, 0) ?? fail('expected "user" "password" (fields in double quotes)');
    const rest = line.slice(user.end);
    if (!/^[ \t]/.test(rest)) fail("expected whitespace after the user name");
    const secretStart = user.end + rest.length - rest.trimStart().length;
    const secret = readQuoted(line, secretStart) ??
      fail("expected the password or verifier in double quotes after the user name");
    if (user.value === "") fail("empty user name");
    if (secret.value.startsWith(SCRAM_VERIFIER_PREFIX)) {
      try {
        parseScramVerifier(secret.value);
      } catch (err) {
        fail(`user "${user.value}": ${(err as Error).message}`);
      }
    }
    const previous = firstLine.get(user.value);
    if (previous !== undefined) fail(`user "${user.value}" is already listed on line ${previous}`);
    firstLine.set(user.value, lineNumber);
    users.set(user.value, secret.value);
  });
  return users;
}

/** A quoted field starting at `start`, with `""` unescaped; undefined when not a closed quoted field. */
function readQuoted(line: string, start: number): { value: string; end: number } | undefined {
  if (line[start] !== '"') return undefined;
  let value = "";
  let at = start + 1;
  for (;;) {
    const quote = line.indexOf('"', at);
    if (quote < 0) return undefined;
    value += line.slice(at, quote);
    if (line[quote + 1] === '"') {
      value += '"';
      at = quote + 2;
    } else {
      return { value, end: quote + 1 };
    }
  }
}

/**
 * Classifies a user's auth_file entry. An empty password counts as missing: PostgreSQL treats it as
 * "no password", so nobody can log in with it. Throws a RangeError for a malformed SCRAM verifier (not
 * possible for maps from {@link parseUserlist}).
 */
export function lookupVerifier(users: ReadonlyMap<string, string>, user: string): UserlistEntry {
  const secret = users.get(user);
  if (secret === undefined || secret === "") return { kind: "missing" };
  if (secret.startsWith(SCRAM_VERIFIER_PREFIX)) {
    return { kind: "scram", verifier: parseScramVerifier(secret) };
  }
  if (isMd5Verifier(secret)) return { kind: "md5", hash: secret };
  return { kind: "plain", password: secret };
}
