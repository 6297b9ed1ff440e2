/**
 * Policy evaluation: the first rule whose every field matches decides; no match leaves the default.
 * The same walk explains itself for `pgrelay --explain` when asked to.
 */
import type { ReplicationMode } from "../protocol/startup_facts.ts";
import { cidrContains, parseIp } from "./cidr.ts";
import type { Policy, PolicyAction, PolicyRule } from "./policy_schema.ts";
import { DAY_NAMES, inTimeWindow, localTime } from "./time_window.ts";

/** What a rule can be matched against: the startup message and the connection. */
export interface PolicyFacts {
  user: string;
  database: string;
  applicationName: string;
  /** The startup's `replication` parameter as the server reads it. */
  replication: ReplicationMode;
  /** The client address as the socket reports it. */
  source: string;
  tls: boolean;
  now: Date;
}

export interface RuleTrace {
  rule: PolicyRule;
  matched: boolean;
  /** One line per field checked: why it matched or not. */
  reasons: string[];
}

export interface PolicyDecision {
  action: PolicyAction;
  /** The deciding rule, or undefined when the default applied. */
  rule: PolicyRule | undefined;
  /** `no-interns-on-prod`, `rules[3]` or `default`. */
  label: string;
  /** Every rule looked at, in order, when evaluated with `explain`. */
  trace: RuleTrace[];
}

export function evaluatePolicy(policy: Policy, facts: PolicyFacts, explain = false): PolicyDecision {
  const trace: RuleTrace[] = [];
  const address = policy.rules.some((rule) => rule.match.source) ? parseIp(facts.source) : undefined;
  for (const rule of policy.rules) {
    const reasons: string[] | undefined = explain ? [] : undefined;
    const matched = ruleMatches(rule, facts, address, reasons);
    if (reasons) trace.push({ rule, matched, reasons });
    if (matched) return { action: rule.action, rule, label: rule.label, trace };
  }
  return { action: policy.default, rule: undefined, label: "default", trace };
}

/** Checks every field (all must match); with `reasons`, records a line per field instead of stopping early. */
function ruleMatches(
  rule: PolicyRule,
  facts: PolicyFacts,
  address: Uint8Array | undefined,
  reasons?: string[],
): boolean {
  const { match } = rule;
  let all = true;
  const check = (ok: boolean, why: () => string): boolean => {
    if (reasons) reasons.push(`${ok ? "matches" : "does not match"}: ${why()}`);
    all &&= ok;
    return ok || reasons !== undefined;
  };
  const globs = (field: string, value: string, list: readonly { text: string; pattern: RegExp }[]) =>
    check(
      list.some((glob) => glob.pattern.test(value)),
      () =>
        `${field} ${JSON.stringify(value)} ${list.length === 1 ? "vs" : "vs any of"} ${
          list.map((g) => JSON.stringify(g.text)).join(", ")
        }`,
    );
  if (match.user && !globs("user", facts.user, match.user)) return false;
  if (match.database && !globs("database", facts.database, match.database)) return false;
  if (match.application_name && !globs("application_name", facts.applicationName, match.application_name)) {
    return false;
  }
  if (match.source) {
    const blocks = match.source;
    const ok = address !== undefined && blocks.some((block) => cidrContains(block, address));
    if (
      !check(
        ok,
        () => `source ${facts.source} ${ok ? "is in" : "is not in"} ${blocks.map((b) => b.text).join(", ")}`,
      )
    ) return false;
  }
  if (match.tls !== undefined) {
    const want = match.tls;
    if (!check(facts.tls === want, () => `tls is ${facts.tls}, rule wants ${want}`)) return false;
  }
  if (match.replication) {
    const wanted = match.replication;
    const ok = wanted.includes(facts.replication);
    if (!check(ok, () => `replication is ${facts.replication}, rule wants ${wanted.join(" or ")}`)) return false;
  } else if (facts.replication !== "false" && rule.action === "allow") {
    // A rule written for ordinary sessions must not hand out the cluster's WAL: only a rule that names
    // replication allows it (deny rules still apply to everyone they describe).
    if (!check(false, () => `replication is ${facts.replication}, and only a rule naming replication allows it`)) {
      return false;
    }
  }
  if (match.time) {
    const window = match.time;
    const ok = inTimeWindow(window, facts.now);
    const describe = () => {
      const local = localTime(facts.now, window.tz);
      const hhmm = `${String(Math.floor(local.minute / 60)).padStart(2, "0")}:${
        String(local.minute % 60).padStart(2, "0")
      }`;
      return `time ${DAY_NAMES[local.day]} ${hhmm} ${window.tz} ${
        ok ? "is in" : "is outside"
      } ${window.text}`;
    };
    if (!check(ok, describe)) return false;
  }
  if (reasons && reasons.length === 0) {
    reasons.push("matches: the rule has no fields, so it matches everyone");
  }
  return all;
}

/** The lines `pgrelay --explain` prints. */
export function explainDecision(policy: Policy, facts: PolicyFacts): string[] {
  const decision = evaluatePolicy(policy, facts, true);
  const lines = [
    `facts: user=${JSON.stringify(facts.user)} database=${JSON.stringify(facts.database)} ` +
    `application_name=${JSON.stringify(facts.applicationName)} replication=${facts.replication} source=${
      facts.source || "(none)"
    } tls=${facts.tls} ` +
    `time=${facts.now.toISOString()}`,
  ];
  for (const { rule, matched, reasons } of decision.trace) {
    const name = rule.name === undefined ? `rules[${rule.index}]` : `rules[${rule.index}] "${rule.name}"`;
    lines.push(`${name} (${rule.action}): ${matched ? "MATCHES" : "skipped"}`);
    for (const reason of reasons) lines.push(`    ${reason}`);
  }
  lines.push(
    decision.rule
      ? `decision: ${decision.action.toUpperCase()} by ${
        decision.rule.name === undefined ? "" : `rule "${decision.rule.name}" `
      }rules[${decision.rule.index}]`
      : `decision: ${decision.action.toUpperCase()} by the default (no rule matched; ${policy.rules.length} rule${
        policy.rules.length === 1 ? "" : "s"
      })`,
  );
  return lines;
}
