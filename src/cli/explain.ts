/**
 * `pgrelay --explain user=alice database=prod source=10.1.2.3 [application_name=psql] [tls=true]
 * [time=2026-05-04T10:00:00Z]`: which policy rule decides for these facts, and why, without starting.
 */
import { evaluatePolicy, explainDecision, type PolicyFacts } from "../policy/evaluate.ts";
import { parseIp } from "../policy/cidr.ts";
import type { Policy } from "../policy/policy_schema.ts";

export const EXPLAIN_FACTS = ["user", "database", "application_name", "source", "tls", "time"] as const;

/** Reads `key=value` words into facts; throws TypeError naming a bad word. */
export function parseExplainFacts(words: readonly string[], now = new Date()): PolicyFacts {
  const facts: PolicyFacts = { user: "", database: "", applicationName: "", source: "", tls: false, now };
  let databaseGiven = false;
  for (const word of words) {
    const eq = word.indexOf("=");
    const key = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? "" : word.slice(eq + 1);
    if (eq < 0 || !(EXPLAIN_FACTS as readonly string[]).includes(key)) {
      throw new TypeError(
        `--explain takes KEY=VALUE words with keys ${EXPLAIN_FACTS.join(", ")}, got "${word}"`,
      );
    }
    switch (key) {
      case "user":
        facts.user = value;
        break;
      case "database":
        facts.database = value;
        databaseGiven = true;
        break;
      case "application_name":
        facts.applicationName = value;
        break;
      case "source":
        if (!parseIp(value)) throw new TypeError(`--explain: source must be an IP address, got "${value}"`);
        facts.source = value;
        break;
      case "tls":
        if (value !== "true" && value !== "false") {
          throw new TypeError(`--explain: tls must be true or false, got "${value}"`);
        }
        facts.tls = value === "true";
        break;
      case "time": {
        const time = new Date(value);
        if (Number.isNaN(time.getTime())) {
          throw new TypeError(
            `--explain: time must be an ISO 8601 time such as 2026-05-04T10:00:00Z, got "${value}"`,
          );
        }
        facts.now = time;
        break;
      }
    }
  }
  if (!databaseGiven) facts.database = facts.user; // as PostgreSQL does
  return facts;
}

/** The report and whether the facts are allowed. */
export function explain(policy: Policy, facts: PolicyFacts): { lines: string[]; allowed: boolean } {
  return { lines: explainDecision(policy, facts), allowed: evaluatePolicy(policy, facts).action === "allow" };
}
