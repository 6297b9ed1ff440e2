/**
 * The route table: `route(facts)` walks the rules in order and the first whose every field matches decides
 * the cluster and target. The fields are the policy rules' (user, database, application_name, source, tls,
 * replication, time), matched by src/policy's own evaluation, plus `server_name`: the TLS SNI the client
 * sent, for TLS started after SSLRequest and for direct TLS alike.
 *
 * A route rule is not authorisation: it matches a replication connection by its other fields even when it
 * does not name `replication` (policy's allow rules refuse that; here each rule is evaluated as a one-rule
 * deny policy, whose matching is exactly the policy's without that guard).
 */
import { evaluatePolicy, type PolicyFacts } from "../policy/evaluate.ts";
import type { Glob, Policy, RuleMatch } from "../policy/policy_schema.ts";
import type { PoolSettings } from "../pool/pool_schema.ts";
import type { Target } from "./target.ts";

/** The facts a route is chosen on: the policy's, plus the TLS server name. */
export interface RouteFacts extends PolicyFacts {
  /** The SNI host name of the client's TLS hello; undefined without TLS or without SNI. */
  readonly serverName: string | undefined;
}

export interface RouteRule {
  readonly index: number;
  readonly name: string | undefined;
  /** How messages and metrics name the route: its name, else `routes[N]`. */
  readonly label: string;
  readonly match: RuleMatch;
  /** Globs on the SNI name, compiled from lower-cased text (host names are case-insensitive). */
  readonly serverName?: readonly Glob[];
  readonly cluster: string;
  readonly target: Target;
  /** `pool:`: server connections are pooled for this route; absent: one server connection per client. */
  readonly pool?: PoolSettings;
}

/** The route chosen for a session. */
export interface RouteChoice {
  readonly route: RouteRule;
  readonly cluster: string;
  readonly target: Target;
}

/** One rule's verdict with a line per field, for `pgrelay --explain`. */
export interface RouteTrace {
  readonly rule: RouteRule;
  readonly matched: boolean;
  readonly reasons: readonly string[];
}

export class RouteTable {
  readonly rules: readonly RouteRule[];
  /** Per rule, the one-rule deny policy that matches its policy fields. */
  #policies: readonly Policy[];

  constructor(rules: readonly RouteRule[]) {
    this.rules = rules;
    this.#policies = rules.map((rule) => ({
      default: "allow",
      enforceOnReload: false,
      rules: [{ index: rule.index, name: rule.name, label: rule.label, action: "deny", match: rule.match }],
    }));
  }

  /** The first route whose every field matches, or undefined when none does. */
  route(facts: RouteFacts): RouteChoice | undefined {
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      if (rule.serverName && !serverNameMatches(rule.serverName, facts.serverName)) continue;
      if (evaluatePolicy(this.#policies[i]!, facts).rule === undefined) continue;
      return { route: rule, cluster: rule.cluster, target: rule.target };
    }
    return undefined;
  }

  /** Every rule up to and including the deciding one, with why each matched or not. */
  explain(facts: RouteFacts): { choice: RouteChoice | undefined; trace: RouteTrace[] } {
    const trace: RouteTrace[] = [];
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      const reasons: string[] = [];
      let matched = true;
      if (rule.serverName) {
        const ok = serverNameMatches(rule.serverName, facts.serverName);
        matched = ok;
        reasons.push(
          `${ok ? "matches" : "does not match"}: server_name ${
            facts.serverName === undefined ? "(none)" : JSON.stringify(facts.serverName)
          } vs ${rule.serverName.map((glob) => JSON.stringify(glob.text)).join(", ")}`,
        );
      }
      const decision = evaluatePolicy(this.#policies[i]!, facts, true);
      const policyReasons = decision.trace[0]?.reasons ?? [];
      const emptyRule = policyReasons.length === 1 && policyReasons[0]!.includes("the rule has no fields");
      if (!(rule.serverName && emptyRule)) reasons.push(...policyReasons);
      matched &&= decision.rule !== undefined;
      trace.push({ rule, matched, reasons });
      if (matched) return { choice: { route: rule, cluster: rule.cluster, target: rule.target }, trace };
    }
    return { choice: undefined, trace };
  }
}

function serverNameMatches(globs: readonly Glob[], serverName: string | undefined): boolean {
  if (serverName === undefined) return false;
  const name = serverName.toLowerCase();
  return globs.some((glob) => glob.pattern.test(name));
}
