/**
 * The facts a StartupMessage gives the server, computed the way PostgreSQL computes them, so that policy,
 * limits, audit and logs decide on the names the server will use rather than on the raw parameters:
 * - `user` and `database` (`ProcessStartupPacket`, backend_startup.c): an empty or absent database means
 *   the user's name; both are cut to NAMEDATALEN-1 = 63 bytes; a physical replication connection
 *   (`replication=true`) is attached to no database at all.
 * - the run-time settings (`process_startup_options`, postinit.c): the `options` parameter is split like a
 *   command line (`pg_split_opts`: white space separates, a backslash escapes the next character) and read
 *   like one (`process_postgres_switches`: `-c name=value`, `--name=value`); then every other parameter is
 *   a setting too and is applied after them, so a parameter wins over the same setting in `options`.
 *   Setting names are case-insensitive and `-` in them means `_`; the last value of a name wins.
 * - `application_name` (`check_application_name`): cut to 63 bytes on a character boundary, then every
 *   byte that is not printable ASCII becomes `?` (as PostgreSQL 15 does; 16 and later write `\xNN`).
 * - `replication`: `database` (logical) or a boolean as `parse_bool` reads it (`true`, `on`, `yes`, `1`,
 *   unambiguous prefixes, any case).
 * What the server would refuse (no user, a bad `replication` value, an unreadable `options`) throws the
 * ProtocolError the server would send, so nothing is decided on facts the server would never apply.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html (StartupMessage)
 */
import { ProtocolError } from "./protocol_error.ts";
import { SQLSTATE } from "./sqlstate.ts";

/** NAMEDATALEN - 1: the longest role, database or application name in bytes. */
export const MAX_NAME_BYTES = 63;

/** The `replication` fact: not a replication connection, physical (`true`) or logical (`database`). */
export const REPLICATION_MODES = ["false", "true", "database"] as const;
export type ReplicationMode = typeof REPLICATION_MODES[number];

export interface StartupFacts {
  readonly user: string;
  readonly database: string;
  readonly applicationName: string;
  readonly replication: ReplicationMode;
  /** Every run-time setting the startup applies, by lower-case name, with the value that wins. */
  readonly settings: ReadonlyMap<string, string>;
}

/**
 * Short switches of `process_postgres_switches` ("B:bc:C:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:"): 1 takes an
 * argument, 0 does not. `c` and `-` set any setting; the others are read past (they set server-level
 * settings a client cannot change, or nothing).
 */
const SWITCHES: Readonly<Record<string, 0 | 1>> = {
  B: 1,
  b: 0,
  c: 1,
  C: 1,
  D: 1,
  d: 1,
  E: 0,
  e: 0,
  F: 0,
  f: 1,
  h: 1,
  i: 0,
  j: 0,
  k: 1,
  l: 0,
  N: 1,
  n: 0,
  O: 0,
  P: 0,
  p: 1,
  r: 1,
  S: 1,
  s: 0,
  T: 0,
  t: 1,
  v: 1,
  W: 1,
  "-": 1,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The facts of a StartupMessage's parameters, given in packet order (duplicates included). */
export function startupFacts(parameters: Iterable<readonly [string, string]>): StartupFacts {
  let user: string | undefined;
  let database: string | undefined;
  let options: string | undefined;
  let replication: ReplicationMode = "false";
  const fromPacket: Array<readonly [string, string]> = [];
  for (const [name, value] of parameters) {
    if (name === "user") user = value;
    else if (name === "database") database = value;
    else if (name === "options") options = value;
    else if (name === "replication") replication = replicationMode(value);
    else if (!name.startsWith("_pq_.")) fromPacket.push([name, value]);
  }
  if (!user) {
    throw new ProtocolError("no PostgreSQL user name specified in startup packet", {
      sqlstate: SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
    });
  }
  const settings = new Map<string, string>();
  if (options !== undefined) {
    for (const [name, value] of optionSettings(options)) {
      settings.set(name, value);
    }
  }
  for (const [name, value] of fromPacket) settings.set(lowerAscii(name), value);
  return {
    user: clipName(user),
    database: replication === "true" ? "" : clipName(database || user),
    applicationName: cleanAscii(clipName(settings.get("application_name") ?? "")),
    replication,
    settings,
  };
}

/** The `replication` parameter as the server reads it; throws the server's FATAL 22023 otherwise. */
export function replicationMode(value: string): ReplicationMode {
  if (value === "database") return "database";
  const flag = parseBool(value);
  if (flag === undefined) {
    throw new ProtocolError(
      `invalid value for parameter "replication": "${value}" (valid values are: "false", 0, "true", 1, "database")`,
      { sqlstate: SQLSTATE.INVALID_PARAMETER_VALUE },
    );
  }
  return flag ? "true" : "false";
}

/** PostgreSQL's parse_bool: true/false, yes/no, on/off, 1/0, and unambiguous prefixes, in any case. */
export function parseBool(value: string): boolean | undefined {
  const text = value.toLowerCase();
  const prefixOf = (word: string, minimum = 1) => text.length >= minimum && word.startsWith(text);
  if (prefixOf("true") || prefixOf("yes") || prefixOf("on", 2)) return true;
  if (prefixOf("false") || prefixOf("no") || prefixOf("off", 2)) return false;
  if (text === "1") return true;
  if (text === "0") return false;
  return undefined;
}

/** The `-c name=value` and `--name=value` settings of an `options` parameter, in order. */
export function optionSettings(options: string): Array<[string, string]> {
  const args = splitOptions(options);
  const settings: Array<[string, string]> = [];
  const invalid = (arg: string) =>
    new ProtocolError(`invalid command-line argument for server process: ${arg}`, {
      sqlstate: SQLSTATE.SYNTAX_ERROR,
    });
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      if (i + 1 < args.length) throw invalid(args[i + 1]!); // the server takes no other arguments
      break;
    }
    if (arg.length < 2 || arg[0] !== "-") throw invalid(arg);
    for (let at = 1; at < arg.length; at++) {
      const flag = arg[at]!;
      const takes = SWITCHES[flag];
      if (takes === undefined) throw invalid(arg);
      if (takes === 0) continue;
      let value = arg.slice(at + 1);
      if (value === "") {
        if (i + 1 >= args.length) throw invalid(arg);
        value = args[++i]!;
      }
      if (flag === "c" || flag === "-") {
        const eq = value.indexOf("=");
        if (eq < 0) {
          throw new ProtocolError(`${flag === "c" ? "-c " : "--"}${value} requires a value`, {
            sqlstate: SQLSTATE.SYNTAX_ERROR,
          });
        }
        settings.push([lowerAscii(value.slice(0, eq)).replaceAll("-", "_"), value.slice(eq + 1)]);
      }
      break; // the rest of this word was the switch's argument
    }
  }
  return settings;
}

/** pg_split_opts: words separated by white space; a backslash makes the next character literal. */
export function splitOptions(options: string): string[] {
  const words: string[] = [];
  let at = 0;
  while (at < options.length) {
    while (at < options.length && isSpace(options[at]!)) at++;
    if (at >= options.length) break;
    let word = "";
    let escaped = false;
    for (; at < options.length; at++) {
      const char = options[at]!;
      if (isSpace(char) && !escaped) break;
      if (!escaped && char === "\\") escaped = true;
      else {
        escaped = false;
        word += char;
      }
    }
    words.push(word);
  }
  return words;
}

const isSpace = (char: string) =>
  char === " " || char === "\t" || char === "\n" || char === "\r" || char === "\v" || char === "\f";

/** Setting names compare case-insensitively, ASCII letters only (guc_name_compare). */
function lowerAscii(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Cuts a name to 63 bytes of UTF-8, never inside a character (pg_mbcliplen). */
export function clipName(name: string): string {
  if (name.length <= MAX_NAME_BYTES / 3) return name; // 21 UTF-16 units are at most 63 bytes
  const bytes = encoder.encode(name);
  if (bytes.length <= MAX_NAME_BYTES) return name;
  let end = MAX_NAME_BYTES;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return decoder.decode(bytes.subarray(0, end));
}

/** pg_clean_ascii (PostgreSQL 15): every byte outside printable ASCII becomes `?`. */
function cleanAscii(text: string): string {
  if (!/[^\x20-\x7e]/.test(text)) return text;
  let out = "";
  for (const byte of encoder.encode(text)) out += byte >= 32 && byte <= 126 ? String.fromCharCode(byte) : "?";
  return out;
}
