/**
 * The `policy:` section: validated into rules ready to evaluate (globs compiled, CIDR blocks parsed).
 *
 * ```yaml
 * policy:
 *   default: allow                 # or deny: what applies when no rule matches
 *   enforce_on_reload: false       # on SIGHUP, end live sessions that the new rules deny (FATAL 57P01)
 *   rules:                         # first match decides
 *     - name: no-interns-on-prod
 *       deny: { user: "intern*", database: "prod" }
 *     - allow: { source: "10.0.0.0/8", tls: true, time: { days: [mon-fri], between: "09:00-18:00" } }
 *     - allow: { user: replicator, replication: true }   # replication connections need a rule naming them
 * ```
 */
import { SettingError, SettingErrors } from "../config/config_error.ts";
import { type Cidr, parseCidr } from "./cidr.ts";
import { compileGlob } from "./glob.ts";
import { REPLICATION_MODES, type ReplicationMode } from "../protocol/startup_facts.ts";
import { parseTimeWindow, type TimeWindow, TimeWindowError } from "./time_window.ts";

export const POLICY_ACTIONS = ["allow", "deny"] as const;
export type PolicyAction = typeof POLICY_ACTIONS[number];

/** The match fields, in the order they are checked and explained. */
export const MATCH_FIELDS = {
  user: "glob or list of globs on the startup user",
  database: "glob or list of globs on the database (defaults to the user, as in PostgreSQL)",
  application_name: "glob or list of globs on application_name",
  source: "CIDR block or list of blocks (IPv4 or IPv6) holding the client address",
  tls: "true or false: whether the client leg is encrypted",
  replication: "true (physical), database (logical), false, or a list: the startup's replication parameter",
  time: '{ days: [mon-fri], between: "09:00-18:00", tz: "UTC" }',
} as const;
export type MatchField = keyof typeof MATCH_FIELDS;

export interface Glob {
  readonly text: string;
  readonly pattern: RegExp;
}

export interface RuleMatch {
  user?: readonly Glob[];
  database?: readonly Glob[];
  application_name?: readonly Glob[];
  source?: readonly Cidr[];
  tls?: boolean;
  /** Only a rule that names `replication` can allow a replication connection. */
  replication?: readonly ReplicationMode[];
  time?: TimeWindow;
}

export interface PolicyRule {
  readonly index: number;
  readonly name: string | undefined;
  /** How messages name the rule: its name, else `rules[N]`. */
  readonly label: string;
  readonly action: PolicyAction;
  readonly match: RuleMatch;
}

export interface Policy {
  readonly default: PolicyAction;
  readonly enforceOnReload: boolean;
  readonly rules: readonly PolicyRule[];
}

export const DEFAULT_POLICY: Policy = { default: "allow", enforceOnReload: false, rules: [] };

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Validates the raw `policy:` value; throws SettingError with the path of the first bad value. */
export function parsePolicy(raw: unknown): Policy {
  if (!isMapping(raw)) throw new SettingError([], "expected a mapping with default: and rules:");
  let defaultAction: PolicyAction = "allow";
  let enforceOnReload = false;
  let rules: PolicyRule[] = [];
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case "default":
        if (!POLICY_ACTIONS.includes(value as PolicyAction)) {
          throw new SettingError(["default"], `expected allow or deny, got ${JSON.stringify(value)}`);
        }
        defaultAction = value as PolicyAction;
        break;
      case "enforce_on_reload":
        if (typeof value !== "boolean") {
          throw new SettingError([key], `expected true or false, got ${JSON.stringify(value)}`);
        }
        enforceOnReload = value;
        break;
      case "rules":
        if (value === null) break;
        if (!Array.isArray(value)) {
          throw new SettingError(["rules"], 'expected a list of rules such as - deny: { user: "intern*" }');
        }
        {
          const bad: SettingError[] = [];
          rules = value.flatMap((rule, index) => {
            try {
              return [parseRule(rule, index)];
            } catch (error) {
              if (!(error instanceof SettingError)) throw error;
              bad.push(error);
              return [];
            }
          });
          if (bad.length > 0) throw new SettingErrors(bad);
        }
        break;
      default:
        throw new SettingError([key], "unknown key (known keys: default, enforce_on_reload, rules)");
    }
  }
  return { default: defaultAction, enforceOnReload, rules };
}

function parseRule(raw: unknown, index: number): PolicyRule {
  const at = (...path: (string | number)[]) => ["rules", index, ...path];
  if (!isMapping(raw)) {
    throw new SettingError(at(), 'expected a mapping such as { name: x, deny: { user: "intern*" } }');
  }
  let name: string | undefined;
  let action: PolicyAction | undefined;
  let match: RuleMatch = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === "name") {
      if (typeof value !== "string" || value === "") {
        throw new SettingError(at("name"), `expected a non-empty string, got ${JSON.stringify(value)}`);
      }
      name = value;
    } else if (POLICY_ACTIONS.includes(key as PolicyAction)) {
      if (action !== undefined) {
        throw new SettingError(at(key), "a rule takes exactly one of allow: or deny:");
      }
      action = key as PolicyAction;
      match = parseMatch(value ?? {}, at(key));
    } else {
      throw new SettingError(at(key), "unknown key (known keys: name, allow, deny)");
    }
  }
  if (action === undefined) {
    throw new SettingError(
      at(),
      "a rule needs allow: or deny: with the fields to match ({} matches everyone)",
    );
  }
  return { index, name, label: name ?? `rules[${index}]`, action, match };
}

function parseMatch(raw: unknown, path: (string | number)[]): RuleMatch {
  if (!isMapping(raw)) {
    throw new SettingError(
      path,
      `expected a mapping of match fields (${Object.keys(MATCH_FIELDS).join(", ")})`,
    );
  }
  const match: RuleMatch = {};
  for (const [key, value] of Object.entries(raw)) {
    const here = [...path, key];
    switch (key as MatchField) {
      case "user":
      case "database":
      case "application_name":
        match[key as "user"] = listOf(value, here, 'a glob such as "intern*"').map((text) => ({
          text,
          pattern: compileGlob(text),
        }));
        break;
      case "source":
        match.source = listOf(value, here, 'a CIDR block such as "10.0.0.0/8"').map((text) => {
          try {
            return parseCidr(text);
          } catch (error) {
            throw new SettingError(here, (error as Error).message);
          }
        });
        break;
      case "tls":
        if (typeof value !== "boolean") {
          throw new SettingError(here, `expected true or false, got ${JSON.stringify(value)}`);
        }
        match.tls = value;
        break;
      case "replication": {
        const list = Array.isArray(value) ? value : [value];
        const modes = list.map((item) => typeof item === "boolean" ? String(item) : item);
        if (list.length === 0 || !modes.every((mode) => REPLICATION_MODES.includes(mode as ReplicationMode))) {
          throw new SettingError(
            here,
            `expected true (physical), database (logical), false, or a list of them, got ${JSON.stringify(value)}`,
          );
        }
        match.replication = modes as ReplicationMode[];
        break;
      }
      case "time":
        try {
          match.time = parseTimeWindow(value);
        } catch (error) {
          if (!(error instanceof TimeWindowError)) throw error;
          throw new SettingError(error.key ? [...here, error.key] : here, error.message);
        }
        break;
      default:
        throw new SettingError(
          here,
          `unknown match field (known fields: ${Object.keys(MATCH_FIELDS).join(", ")})`,
        );
    }
  }
  return match;
}

function listOf(value: unknown, path: (string | number)[], example: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((item) => typeof item === "string" || typeof item === "number")) {
    throw new SettingError(path, `expected ${example} or a list of them, got ${JSON.stringify(value)}`);
  }
  return list.map(String);
}
