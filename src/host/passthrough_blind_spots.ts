/**
 * `tls.mode: passthrough` relays a TLS client's bytes to the server unread: pgrelay decides on the client's
 * address, that it encrypts, and the time, but never sees its user, database, application_name or
 * replication parameter. A rule or limit on those would be skipped by every client that encrypts, so such a
 * config is refused rather than enforced only on the clients that do not.
 */
import type { Config } from "./config_schema.ts";
import type { ConfigIssue } from "../config/config_error.ts";
import { formatPath } from "../config/config_error.ts";
import type { RawLayer } from "../config/raw_layer.ts";
import { at, lastLayerWith } from "./_layer_lines.ts";

/** Match fields that live inside the client's startup message, out of passthrough's sight. */
export const STARTUP_MATCH_FIELDS = ["user", "database", "application_name", "replication"] as const;

/** Limits counted per startup-message fact. */
const STARTUP_LIMITS = [["perUser", "per_user", "user"], [
  "perDatabase",
  "per_database",
  "database",
]] as const;

/** One issue per rule field and per limit that passthrough cannot apply to an encrypted client. */
export function passthroughBlindSpots(config: Config, layers: readonly RawLayer[]): ConfigIssue[] {
  if (config.tls.mode !== "passthrough") return [];
  const issues: ConfigIssue[] = [];
  const policyLayer = lastLayerWith(layers, "policy");
  for (const rule of config.policy.rules) {
    // `tls: false` confines a rule to unencrypted clients, whose startup message pgrelay does read.
    if (rule.match.tls === false) continue;
    for (const field of STARTUP_MATCH_FIELDS) {
      if (rule.match[field] === undefined) continue;
      const path = ["rules", rule.index, rule.action, field];
      issues.push(at(policyLayer, "policy", path, {
        key: formatPath("policy", path),
        message: `rule "${rule.label}" depends on ${field}, which tls.mode passthrough cannot see in an ` +
          `end-to-end encrypted session, so every client that encrypts would skip it ` +
          `(match on source, tls or time, or add tls: false to apply it to unencrypted clients only)`,
      }));
    }
  }
  const limitsLayer = lastLayerWith(layers, "limits");
  for (const [property, key, fact] of STARTUP_LIMITS) {
    if (config.limits[property] === undefined) continue;
    issues.push(at(limitsLayer, "limits", [key], {
      key: `limits.${key}`,
      message: `cannot be enforced with tls.mode passthrough: pgrelay cannot see the ${fact} of an ` +
        `end-to-end encrypted session, so those sessions would not be counted (use per_source or max_connections)`,
    }));
  }
  return issues;
}
