/**
 * `pgrelay --explain user=alice database=prod source=10.1.2.3 [application_name=psql] [tls=true]
 * [time=2026-05-04T10:00:00Z] [replication=true] [options="-c application_name=x"]`: which policy rule decides
 * for these facts, and why, without starting. user, database, application_name, replication and options are
 * read as a StartupMessage's parameters are, so the facts are the ones a real connection would be decided on
 * (an empty database is the user's, names are cut to 63 bytes, options can set application_name).
 */
import { evaluatePolicy, explainDecision, type PolicyFacts } from "../policy/evaluate.ts";
import { parseIp } from "../policy/cidr.ts";
import type { Policy } from "../policy/policy_schema.ts";
import { startupFacts } from "../protocol/startup_facts.ts";
import type { RouteFacts, RouteTable } from "../routing/route_table.ts";

export const EXPLAIN_FACTS = [
  "user",
  "database",
  "application_name",
  "source",
  "tls",
  "time",
  "replication",
  "options",
  "server_name",
] as const;

/** The words that are startup parameters, passed through the server's reading of them. */
const STARTUP_PARAMETERS: ReadonlySet<string> = new Set(["user", "database", "application_name", "replication", "options"]);

/** Reads `key=value` words into facts; throws TypeError naming a bad word. */
export function parseExplainFacts(words: readonly string[], now = new Date()): PolicyFacts & { serverName: string | undefined } {
  let source = "";
  let serverName: string | undefined;
  let tls = false;
  const parameters: Array<[string, string]> = [];
  for (const word of words) {
    const eq = word.indexOf("=");
    const key = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? "" : word.slice(eq + 1);
    if (eq < 0 || !(EXPLAIN_FACTS as readonly string[]).includes(key)) {
      throw new TypeError(
        `--explain takes KEY=VALUE words with keys ${EXPLAIN_FACTS.join(", ")}, got "${word}"`,
      );
    }
    if (STARTUP_PARAMETERS.has(key)) {
      parameters.push([key, value]);
      continue;
    }
    switch (key) {
      case "server_name":
        serverName = value;
        break;
      case "source":
        if (!parseIp(value)) throw new TypeError(`--explain: source must be an IP address, got "${value}"`);
        source = value;
        break;
      case "tls":
        if (value !== "true" && value !== "false") {
          throw new TypeError(`--explain: tls must be true or false, got "${value}"`);
        }
        tls = value === "true";
        break;
      case "time": {
        const time = new Date(value);
        if (Number.isNaN(time.getTime())) {
          throw new TypeError(
            `--explain: time must be an ISO 8601 time such as 2026-05-04T10:00:00Z, got "${value}"`,
          );
        }
        now = time;
        break;
      }
    }
  }
  let facts;
  try {
    facts = startupFacts(parameters);
  } catch (error) {
    throw new TypeError(`--explain: ${(error as Error).message}`);
  }
  return {
    user: facts.user,
    database: facts.database,
    applicationName: facts.applicationName,
    replication: facts.replication,
    source,
    tls,
    now,
    serverName,
  };
}

/** The report and whether the facts are allowed. */
export function explain(policy: Policy, facts: PolicyFacts): { lines: string[]; allowed: boolean } {
  return { lines: explainDecision(policy, facts), allowed: evaluatePolicy(policy, facts).action === "allow" };
}

/** The route the facts take: every rule tried, and the cluster and target of the one that matches. */
export function explainRoute(table: RouteTable, facts: RouteFacts): { lines: string[]; routed: boolean } {
  const { choice, trace } = table.explain(facts);
  const lines: string[] = [];
  for (const step of trace) {
    lines.push(`route ${step.rule.label}: ${step.matched ? "matches" : "does not match"}`);
    for (const reason of step.reasons) lines.push(`  ${reason}`);
  }
  lines.push(
    choice
      ? `route: ${choice.route.label} -> cluster "${choice.cluster}", target ${choice.target}`
      : "route: none matches (the connection would get FATAL 28000)",
  );
  return { lines, routed: choice !== undefined };
}
