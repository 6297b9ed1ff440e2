/**
 * The `routes:` section, validated into {@link RouteRule}s. The match fields are the policy rules' and are
 * parsed by src/policy (so globs, CIDR blocks, replication and time windows read the same in both places),
 * plus `server_name`: a glob or list of globs on the TLS SNI name.
 *
 * ```yaml
 * routes:                       # first match wins
 *   - name: reports
 *     match: { application_name: "report*" }
 *     cluster: main
 *     target: standby           # any | read-write | read-only | primary | standby | prefer-standby
 *   - name: default
 *     cluster: main
 *     target: primary
 *     pool: { mode: transaction, size: 20 }   # optional: see src/pool/pool_schema.ts
 * ```
 */
import { SettingError, SettingErrors } from "../config/config_error.ts";
import { compileGlob } from "../policy/glob.ts";
import { parsePolicy, type RuleMatch } from "../policy/policy_schema.ts";
import { parsePool, type PoolSettings } from "../pool/pool_schema.ts";
import type { RouteRule } from "./route_table.ts";
import { parseTarget, type Target, TARGET_NAMES } from "./target.ts";

const ROUTE_KEYS = ["name", "match", "cluster", "target", "pool"] as const;

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Validates the raw `routes:` list. With `clusters`, a route naming another cluster is an error. A route
 * placed after one that matches every session can never match, and is an error too. Throws SettingErrors
 * listing every bad route (paths relative to `routes`).
 */
export function parseRoutes(raw: unknown, clusters?: ReadonlySet<string>): RouteRule[] {
  if (raw === null || raw === undefined) return [];
  if (!Array.isArray(raw)) {
    throw new SettingError(
      [],
      "expected a list of routes such as - { name: default, cluster: main, target: primary }",
    );
  }
  const bad: SettingError[] = [];
  const rules: RouteRule[] = [];
  let catchAll: RouteRule | undefined;
  raw.forEach((item, index) => {
    try {
      const rule = parseRoute(item, index, clusters);
      if (catchAll) {
        throw new SettingError(
          [index],
          `this route can never match: ${catchAll.label} before it matches every session`,
        );
      }
      if (!rule.serverName && Object.keys(rule.match).length === 0) catchAll = rule;
      rules.push(rule);
    } catch (error) {
      if (error instanceof SettingErrors) bad.push(...error.errors);
      else if (error instanceof SettingError) bad.push(error);
      else throw error;
    }
  });
  if (bad.length > 0) throw new SettingErrors(bad);
  return rules;
}

function parseRoute(raw: unknown, index: number, clusters: ReadonlySet<string> | undefined): RouteRule {
  if (!isMapping(raw)) {
    throw new SettingError(
      [index],
      "expected a mapping such as { name: default, cluster: main, target: primary }",
    );
  }
  let name: string | undefined;
  let cluster: string | undefined;
  let target: Target = "any";
  let match: RuleMatch = {};
  let serverName: RouteRule["serverName"];
  let pool: PoolSettings | undefined;
  for (const [key, value] of Object.entries(raw)) {
    switch (key as typeof ROUTE_KEYS[number]) {
      case "name":
        if (typeof value !== "string" || value === "") {
          throw new SettingError([index, key], `expected a non-empty string, got ${JSON.stringify(value)}`);
        }
        name = value;
        break;
      case "cluster":
        if (typeof value !== "string" || value === "") {
          throw new SettingError([index, key], `expected a cluster name, got ${JSON.stringify(value)}`);
        }
        if (clusters && !clusters.has(value)) {
          throw new SettingError(
            [index, key],
            `unknown cluster "${value}" (clusters: ${[...clusters].join(", ") || "none"})`,
          );
        }
        cluster = value;
        break;
      case "target": {
        const parsed = parseTarget(value);
        if (parsed === undefined) {
          throw new SettingError(
            [index, key],
            `expected one of ${TARGET_NAMES.join(", ")}, got ${JSON.stringify(value)}`,
          );
        }
        target = parsed;
        break;
      }
      case "match":
        ({ match, serverName } = parseRouteMatch(value ?? {}, index));
        break;
      case "pool":
        pool = parsePool(value, [index, key]);
        break;
      default:
        throw new SettingError([index, key], `unknown key (known keys: ${ROUTE_KEYS.join(", ")})`);
    }
  }
  if (cluster === undefined) {
    throw new SettingError([index], "a route needs cluster: naming the cluster it sends to");
  }
  const label = name ?? `routes[${index}]`;
  const rule: RouteRule = { index, name, label, match, cluster, target };
  return { ...rule, ...(serverName ? { serverName } : {}), ...(pool ? { pool } : {}) };
}

/** Splits off `server_name` and hands the rest to the policy's parser, mapping its error paths back. */
function parseRouteMatch(
  raw: unknown,
  index: number,
): { match: RuleMatch; serverName: RouteRule["serverName"] } {
  if (!isMapping(raw)) {
    throw new SettingError(
      [index, "match"],
      "expected a mapping of match fields (the policy's, plus server_name)",
    );
  }
  const { server_name: rawServerName, ...policyFields } = raw;
  let serverName: RouteRule["serverName"];
  if (rawServerName !== undefined) {
    const list = Array.isArray(rawServerName) ? rawServerName : [rawServerName];
    if (list.length === 0 || !list.every((item) => typeof item === "string" && item !== "")) {
      throw new SettingError(
        [index, "match", "server_name"],
        `expected a host name glob such as "*.db.example.com" or a list of them, got ${
          JSON.stringify(rawServerName)
        }`,
      );
    }
    serverName = (list as string[]).map((text) => ({ text, pattern: compileGlob(text.toLowerCase()) }));
  }
  const remap = (error: SettingError) =>
    new SettingError( // ["rules", 0, "deny", ...] in the policy's terms
      [index, "match", ...error.path.slice(3)],
      error.message.replace("(known fields: ", "(known fields: server_name, "),
    );
  try {
    const match = parsePolicy({ rules: [{ deny: policyFields }] }).rules[0]!.match;
    return { match, serverName };
  } catch (error) {
    if (error instanceof SettingErrors) throw new SettingErrors(error.errors.map(remap));
    if (error instanceof SettingError) throw remap(error);
    throw error;
  }
}
