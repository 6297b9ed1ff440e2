/**
 * Turns raw values (from YAML and from flags) into a Config, collecting every problem instead of stopping
 * at the first, so `--check` shows them all.
 */
import { LOG_LEVELS, type LogLevel } from "../core/logger.ts";
import { MAX_STARTUP_PACKET_BYTES } from "../protocol/limits.ts";
import { parseAudit } from "../audit/audit_schema.ts";
import { parseLimits } from "../limits/limits_schema.ts";
import { parsePolicy } from "../policy/policy_schema.ts";
import { type ConfigIssue, formatPath, SettingError, SettingErrors } from "../config/config_error.ts";
import type { RawLayer } from "../config/raw_layer.ts";
import { passthroughBlindSpots } from "./passthrough_blind_spots.ts";
import {
  type ClientTlsMode,
  negotiationProblem,
  UPSTREAM_TLS_NEGOTIATIONS,
  type UpstreamTlsMode,
  type UpstreamTlsNegotiation,
} from "../core/tls_settings.ts";
import { UPSTREAM_AUTH_METHODS, type UpstreamAuthMethod } from "../backend/upstream_auth.ts";
import { AUTH_MODES, type AuthMode, CLIENT_TLS_MODES, type Config, CONFIG_KEYS, type ConfigKey, DEFAULT_CONFIG, UPSTREAM_TLS_MODES } from "./config_schema.ts";
import { parseAddress, parseDuration, parseSize } from "../config/units.ts";
import { isLoopbackHost } from "../config/loopback.ts";
import { checkRoutesAgainstClusters, parseClusters } from "../routing/cluster_schema.ts";
import { parseRoutes } from "../routing/route_schema.ts";
import { parseMaxServerConnections, parsePool } from "../pool/pool_schema.ts";
import { poolingChecks } from "./pooling_checks.ts";

const SETTERS: { [K in ConfigKey]: (config: Config, value: unknown) => void } = {
  listen: (config, value) => config.listen = parseAddress(asString(value)),
  upstream: (config, value) => config.upstream = parseAddress(asString(value)),
  startup_timeout: (config, value) => config.startupTimeoutMs = positive(parseDuration(value)),
  connect_timeout: (config, value) => config.connectTimeoutMs = positive(parseDuration(value)),
  max_message_size: (config, value) => {
    const bytes = parseSize(value);
    if (bytes < MAX_STARTUP_PACKET_BYTES) throw new RangeError(`must be at least ${MAX_STARTUP_PACKET_BYTES} bytes`);
    config.maxMessageBytes = bytes;
  },
  log_level: (config, value) => {
    if (!LOG_LEVELS.includes(value as LogLevel)) {
      throw new RangeError(`expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(value)}`);
    }
    config.logLevel = value as LogLevel;
  },
  admin: (config, value) => {
    // The --admin flag gives the address alone; the file gives a mapping.
    if (typeof value === "string") {
      config.adminListen = parseAddress(value);
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TypeError('expected a mapping such as { listen: "127.0.0.1:9187" }');
    }
    for (const [key, entry] of Object.entries(value)) {
      if (key === "listen") config.adminListen = parseAddress(asString(entry));
      else if (key === "token_file") config.adminTokenFile = asString(entry);
      else throw new RangeError(`unknown key admin.${key} (known keys: admin.listen, admin.token_file)`);
    }
  },
  drain_timeout: (config, value) => config.drainTimeoutMs = parseDuration(value),
  tls: (config, value) => {
    for (const [key, entry] of entriesOf(value, "tls", ["mode", "cert", "key", "require"])) {
      if (key === "mode") config.tls.mode = oneOf(entry, CLIENT_TLS_MODES) as ClientTlsMode;
      if (key === "cert") config.tls.cert = asString(entry);
      if (key === "key") config.tls.key = asString(entry);
      if (key === "require") config.tls.require = asBoolean(entry);
    }
  },
  upstream_tls: (config, value) => {
    for (const [key, entry] of entriesOf(value, "upstream_tls", ["mode", "ca", "server_name", "negotiation"])) {
      if (key === "mode") config.upstreamTls.mode = oneOf(entry, UPSTREAM_TLS_MODES) as UpstreamTlsMode;
      if (key === "ca") config.upstreamTls.ca = asString(entry);
      if (key === "server_name") config.upstreamTls.serverName = asString(entry);
      if (key === "negotiation") config.upstreamTls.negotiation = oneOf(entry, UPSTREAM_TLS_NEGOTIATIONS) as UpstreamTlsNegotiation;
    }
  },
  auth: (config, value) => {
    for (const [key, entry] of entriesOf(value, "auth", ["mode", "file", "query", "user", "database", "upstream_require_auth"])) {
      if (key === "mode") config.auth.mode = oneOf(entry, AUTH_MODES) as AuthMode;
      if (key === "file") config.auth.file = asString(entry);
      if (key === "query") config.auth.query = asString(entry);
      if (key === "user") config.auth.user = asString(entry);
      if (key === "database") config.auth.database = asString(entry);
      if (key === "upstream_require_auth") config.auth.upstreamRequireAuth = parseRequireAuth(entry);
    }
  },
  workers: (config, value) => {
    const workers = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof workers !== "number" || !Number.isInteger(workers) || workers < 1 || workers > 64) {
      throw new RangeError(`expected a whole number from 1 to 64, got ${JSON.stringify(value)}`);
    }
    config.workers = workers;
  },
  policy: (config, value) => config.policy = parsePolicy(value),
  limits: (config, value) => config.limits = parseLimits(value),
  audit: (config, value) => config.audit = parseAudit(value),
  clusters: (config, value) => config.clusters = parseClusters(value),
  routes: (config, value) => config.routes = parseRoutes(value),
  routing: (config, value) => {
    for (const [key, entry] of entriesOf(value, "routing", ["hold_timeout"])) {
      if (key === "hold_timeout") config.holdTimeoutMs = parseDuration(entry);
    }
  },
  pool: (config, value) => config.pool = parsePool(value),
  max_server_connections: (config, value) => config.maxServerConnections = parseMaxServerConnections(value),
};

/** Applies the layers in order over the defaults; returns the config and the issues found. */
export function buildConfig(layers: readonly RawLayer[]): { config: Config; issues: ConfigIssue[] } {
  const config: Config = structuredClone(DEFAULT_CONFIG);
  const issues: ConfigIssue[] = [];
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer.values)) {
      if (value === undefined) continue;
      const where = whereOf(layer, key);
      if (!(key in CONFIG_KEYS)) {
        issues.push({ key, message: `unknown key (known keys: ${Object.keys(CONFIG_KEYS).join(", ")})`, ...where });
        continue;
      }
      try {
        SETTERS[key as ConfigKey](config, value);
      } catch (error) {
        const nested = error instanceof SettingErrors ? error.errors : error instanceof SettingError ? [error] : [];
        if (nested.length > 0 && layer.source !== undefined) {
          for (const one of nested) {
            const line = layer.lineAt?.([key, ...one.path]) ?? where.line;
            const issue: ConfigIssue = { key: formatPath(key, one.path), message: one.message, source: layer.source };
            if (line !== undefined) issue.line = line;
            issues.push(issue);
          }
          continue;
        }
        issues.push({ key: layer.source === undefined ? `--${key.replaceAll("_", "-")}` : key, message: (error as Error).message, ...where });
      }
    }
  }
  issues.push(...crossCheck(config));
  // A routes: or clusters: section that failed to parse is not also reported as missing.
  const failed = (key: string) => issues.some((issue) => issue.key === key || issue.key.startsWith(`${key}[`) || issue.key.startsWith(`${key}.`));
  if (!failed("routes") && !failed("clusters")) issues.push(...routingCrossCheck(config));
  issues.push(...passthroughBlindSpots(config, layers));
  issues.push(...poolingChecks(config, layers));
  return { config, issues };
}

/** Rules that involve several keys, checked once every layer is applied. */
function crossCheck(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const { tls, upstreamTls } = config;
  if (config.adminListen && config.adminTokenFile === undefined && !isLoopbackHost(config.adminListen.hostname)) {
    issues.push({
      key: "admin",
      message: `listen ${JSON.stringify(config.adminListen.hostname)} is not a loopback address, and the admin API can end sessions: ` +
        "set admin.token_file (a file holding a bearer token, mode 0600) or listen on 127.0.0.1, ::1 or localhost",
    });
  }
  if (tls.mode === "terminate" && (tls.cert === undefined || tls.key === undefined)) {
    issues.push({ key: "tls", message: "mode terminate needs cert and key (PEM files of pgrelay's certificate and private key)" });
  }
  if (tls.mode === "disable" && tls.require) {
    issues.push({ key: "tls.require", message: "needs tls.mode terminate or passthrough: with mode disable no client can encrypt" });
  }
  if ((upstreamTls.mode === "verify-ca" || upstreamTls.mode === "verify-full") && upstreamTls.ca === undefined) {
    issues.push({ key: "upstream_tls", message: `mode ${upstreamTls.mode} needs ca (the PEM file of the CA that signed the server's certificate)` });
  }
  const negotiation = negotiationProblem(upstreamTls.mode, upstreamTls.negotiation);
  if (negotiation !== undefined) issues.push({ key: "upstream_tls", message: negotiation });
  if (config.auth.mode === "scram" && config.auth.file === undefined) {
    issues.push({ key: "auth", message: "mode scram needs file (a userlist of SCRAM-SHA-256 verifiers, PgBouncer's auth_file format)" });
  }
  if (config.auth.query !== undefined && config.auth.user === undefined) {
    issues.push({ key: "auth", message: "query needs user: the role pgrelay logs in as to run it (its plaintext password goes in auth.file)" });
  }
  if (config.auth.mode === "scram" && tls.mode === "passthrough") {
    issues.push({ key: "auth", message: "mode scram cannot work with tls.mode passthrough: pgrelay cannot read an end-to-end encrypted session" });
  }
  if (tls.mode === "passthrough" && upstreamTls.mode !== "disable") {
    issues.push({ key: "upstream_tls", message: "must be disable with tls.mode passthrough: the client's own TLS session goes through to the server" });
  }
  return issues;
}

/** clusters and routes go together; each route names a known cluster and a target its health can serve. */
function routingCrossCheck(config: Config): ConfigIssue[] {
  const { clusters, routes } = config;
  if (clusters.length === 0 && routes.length === 0) return [];
  if (clusters.length === 0) return [{ key: "routes", message: "routes need clusters: (the upstream: form has no cluster to route to)" }];
  if (routes.length === 0) return [{ key: "clusters", message: "clusters need routes: (at least one, such as - { name: default, cluster: NAME, target: any })" }];
  const issues: ConfigIssue[] = checkRoutesAgainstClusters(routes, clusters)
    .map((error) => ({ key: formatPath("routes", error.path), message: error.message }));
  for (const cluster of clusters) {
    if (cluster.health && config.auth.file === undefined) {
      issues.push({ key: `clusters.${cluster.name}.health`, message: `health.user "${cluster.health.user}" needs auth.file (its plaintext password goes there)` });
    }
  }
  return issues;
}

function whereOf(layer: RawLayer, key: string): { source?: string; line?: number } {
  if (layer.source === undefined) return {};
  const line = layer.lineOf?.(key);
  return line === undefined ? { source: layer.source } : { source: layer.source, line };
}

/** The entries of a nested mapping such as `tls:`, refusing unknown keys. */
function entriesOf(value: unknown, name: string, known: readonly string[]): Array<[string, unknown]> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`expected a mapping with keys ${known.join(", ")}`);
  }
  const entries = Object.entries(value);
  const unknown = entries.find(([key]) => !known.includes(key));
  if (unknown) throw new RangeError(`unknown key ${name}.${unknown[0]} (known keys: ${known.map((k) => `${name}.${k}`).join(", ")})`);
  return entries;
}

/** auth.upstream_require_auth: a list (or a comma-separated string, as libpq takes it) of allowed methods. */
function parseRequireAuth(value: unknown): UpstreamAuthMethod[] {
  const fail = (message: string): never => {
    throw new SettingError(["upstream_require_auth"], message);
  };
  const items = typeof value === "string" ? value.split(",").map((item) => item.trim()) : value;
  const expected = `a list of ${UPSTREAM_AUTH_METHODS.join(", ")}`;
  if (!Array.isArray(items) || items.length === 0) return fail(`expected ${expected}, got ${JSON.stringify(value)}`);
  const methods: UpstreamAuthMethod[] = [];
  for (const item of items) {
    if (item === "md5") fail("md5 cannot be allowed: pgrelay never answers md5 (use scram-sha-256)");
    if (typeof item === "string" && item.startsWith("!")) fail(`negated methods ("${item}") are not supported: list the allowed ones`);
    if (!UPSTREAM_AUTH_METHODS.includes(item as UpstreamAuthMethod)) fail(`expected ${expected}, got ${JSON.stringify(item)}`);
    if (!methods.includes(item as UpstreamAuthMethod)) methods.push(item as UpstreamAuthMethod);
  }
  return methods;
}

function oneOf(value: unknown, allowed: readonly string[]): string {
  if (typeof value !== "string" || !allowed.includes(value)) {
    throw new RangeError(`expected one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function asBoolean(value: unknown): boolean {
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new TypeError(`expected true or false, got ${JSON.stringify(value)}`);
}

function asString(value: unknown): string {
  if (typeof value !== "string") throw new TypeError(`expected a string such as "127.0.0.1:5432", got ${JSON.stringify(value)}`);
  return value;
}

function positive(ms: number): number {
  if (ms <= 0) throw new RangeError("must be greater than zero");
  return ms;
}
