/**
 * The settings a pooled client's startup packet asks for (application_name, client_encoding, DateStyle,
 * TimeZone, `options=-c name=value`, ...): unreported ones go to its SessionState (replayed like SETs);
 * reported ones are SET on the first server it borrows, whose ParameterStatus then tells the client.
 */
import { optionSettings } from "../protocol/startup_facts.ts";

/** Startup parameters that are not settings. */
const NOT_SETTINGS = new Set(["user", "database", "options", "replication"]);

/** The settings a client's startup packet asks for, by lower-case name; a startup parameter wins over `options`. */
export function startupSettings(pairs: ReadonlyMap<string, string>): Map<string, string> {
  const wanted = new Map<string, string>();
  const options = pairs.get("options");
  if (options !== undefined) for (const [name, value] of optionSettings(options)) wanted.set(name.toLowerCase(), value);
  for (const [name, value] of pairs) {
    if (NOT_SETTINGS.has(name) || name.startsWith("_pq_.")) continue;
    wanted.set(name.toLowerCase(), value);
  }
  return wanted;
}

/**
 * The SET statements for the startup settings a server reports (ParameterStatus) and has another value of;
 * "" when it has them all. Unreported ones are left to the client's SessionState.
 */
export function reportedStartupSql(wanted: ReadonlyMap<string, string>, reported: ReadonlyMap<string, string>): string {
  const lowerReported = new Map<string, string>();
  for (const [name, value] of reported) lowerReported.set(name.toLowerCase(), value);
  const statements: string[] = [];
  for (const [name, value] of wanted) {
    const current = lowerReported.get(name);
    if (current === undefined || current === value) continue;
    statements.push(`SET ${quoteIdentifier(name)} TO ${quoteLiteral(value)}`);
  }
  return statements.join("; ");
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A literal; with a backslash, an E'' string, so the server's standard_conforming_strings does not matter. */
function quoteLiteral(value: string): string {
  return value.includes("\\") ? `E'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'` : `'${value.replaceAll("'", "''")}'`;
}
