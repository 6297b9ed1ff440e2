/**
 * The settings a pooled client expects of whichever server it borrows: those its startup packet asked for
 * (application_name, client_encoding, DateStyle, TimeZone, `options=-c name=value`, ...) and those it
 * changed since, as the server reported them (ParameterStatus). A borrowed server that differs gets SET
 * statements before the client's bytes reach it.
 */
import { optionSettings } from "../protocol/startup_facts.ts";

/** Startup parameters that are not settings. */
const NOT_SETTINGS = new Set(["user", "database", "options", "replication"]);

/**
 * Reported parameters a client can change with SET; the others (server_version, is_superuser, ...) are the
 * server's or the role's own and are never replayed.
 */
const SETTABLE_REPORTED = new Set(["application_name", "client_encoding", "datestyle", "intervalstyle", "timezone", "standard_conforming_strings"]);

/** The settings a client's startup packet asks for, by lower-case name; a startup parameter wins over `options`. */
export function serverSettingsFor(pairs: ReadonlyMap<string, string>): Map<string, string> {
  const wanted = new Map<string, string>();
  const options = pairs.get("options");
  if (options !== undefined) for (const [name, value] of optionSettings(options)) wanted.set(name.toLowerCase(), value);
  for (const [name, value] of pairs) {
    if (NOT_SETTINGS.has(name) || name.startsWith("_pq_.")) continue;
    wanted.set(name.toLowerCase(), value);
  }
  return wanted;
}

/** The client's settings after a transaction: what the server reported is what the client was told. */
export function mergeReported(wanted: Map<string, string>, reported: ReadonlyMap<string, string>): Map<string, string> {
  for (const [name, value] of reported) {
    const key = name.toLowerCase();
    if (SETTABLE_REPORTED.has(key)) wanted.set(key, value);
  }
  return wanted;
}

/**
 * The SET statements that give a server with `reported` parameters (and `applied`, the unreported settings
 * pgrelay set on it before) the client's `wanted` settings; "" when it already has them. Updates `applied`.
 */
export function setStatements(wanted: ReadonlyMap<string, string>, reported: ReadonlyMap<string, string>, applied: Map<string, string>): string {
  const lowerReported = new Map<string, string>();
  for (const [name, value] of reported) lowerReported.set(name.toLowerCase(), value);
  const statements: string[] = [];
  for (const [name, value] of wanted) {
    const current = lowerReported.get(name) ?? applied.get(name);
    if (current === value) continue;
    statements.push(`SET ${quoteIdentifier(name)} TO ${quoteLiteral(value)}`);
    if (!lowerReported.has(name)) applied.set(name, value);
  }
  for (const name of applied.keys()) {
    if (wanted.has(name)) continue;
    statements.push(`RESET ${quoteIdentifier(name)}`);
    applied.delete(name);
  }
  return statements.join("; ");
}

/** A SQL identifier in double quotes (GUC names with dots, such as myapp.tenant, stay one name). */
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL literal in single quotes (with standard_conforming_strings on, only ' needs doubling). */
function quoteLiteral(value: string): string {
  return value.includes("\\") ? `E'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'` : `'${value.replaceAll("'", "''")}'`;
}
