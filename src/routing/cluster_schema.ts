/**
 * The `clusters:` section, validated into settings a {@link Cluster} and its health checker are built from,
 * and the `upstream: HOST:PORT` shorthand (one cluster, one host, one route with target `any`).
 *
 * ```yaml
 * clusters:
 *   main:
 *     hosts: ["db1.internal:5432", "db2.internal:5432"]
 *     health: { interval: 1s, timeout: 1s, user: pgrelay_health, database: postgres }
 *     max_lag: 16MB             # standbys further behind the primary are not chosen
 *     balance: round_robin      # round_robin | random | least_connections
 *     tls: { mode: verify-full, ca: /etc/pgrelay/db-ca.crt, negotiation: direct }   # default: upstream_tls
 * ```
 */
import { SettingError, SettingErrors } from "../config/config_error.ts";
import { parseAddress, parseDuration, parseSize } from "../config/units.ts";
import {
  negotiationProblem,
  UPSTREAM_TLS_NEGOTIATIONS,
  type UpstreamTlsMode,
  type UpstreamTlsNegotiation,
} from "../core/tls_settings.ts";
import type { PoolSettings } from "../pool/pool_schema.ts";
import { type Balance, BALANCES } from "./cluster.ts";
import type { RouteRule } from "./route_table.ts";

/**
 * The upstream TLS modes, as `upstream_tls` takes them. Kept here rather than imported from
 * host/config_schema.ts, which imports the feature folders: routing, like every feature, imports only src/config.
 */
export const CLUSTER_TLS_MODES = [
  "disable",
  "prefer",
  "require",
  "verify-ca",
  "verify-full",
] as const satisfies readonly UpstreamTlsMode[];

/** A cluster's upstream TLS: the shape of `upstream_tls`. */
export interface ClusterTls {
  mode: UpstreamTlsMode;
  /** PEM file of the CA that signed the servers' certificates (verify-ca, verify-full). */
  ca: string | undefined;
  /** Name the servers' certificates must carry (verify-full); default: each host's name. */
  serverName: string | undefined;
  /** libpq's sslnegotiation: postgres (SSLRequest first, the default) or direct (PostgreSQL 17+). */
  negotiation: UpstreamTlsNegotiation;
}

/** How a cluster's hosts are checked (absent: not checked; only target `any` can route to it). */
export interface HealthSettings {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly user: string;
  readonly database: string;
}

export interface ClusterSettings {
  readonly name: string;
  /** `HOST:PORT` each, as configured (IPv6 in brackets). */
  readonly hosts: readonly string[];
  readonly health: HealthSettings | undefined;
  readonly maxLagBytes: number | undefined;
  readonly balance: Balance;
  /** Upstream TLS for this cluster; undefined: the global `upstream_tls`. */
  readonly tls: ClusterTls | undefined;
}

export const HEALTH_DEFAULTS = { intervalMs: 1000, timeoutMs: 1000, database: "postgres" } as const;

const CLUSTER_KEYS = ["hosts", "health", "max_lag", "balance", "tls"] as const;
const HEALTH_KEYS = ["interval", "timeout", "user", "database"] as const;
const TLS_KEYS = ["mode", "ca", "server_name", "negotiation"] as const;

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Validates the raw `clusters:` mapping; throws SettingErrors naming every bad value (paths under `clusters`). */
export function parseClusters(raw: unknown): ClusterSettings[] {
  if (raw === null || raw === undefined) return [];
  if (!isMapping(raw)) throw new SettingError([], "expected a mapping of cluster names to { hosts: [...] }");
  const bad: SettingError[] = [];
  const clusters: ClusterSettings[] = [];
  for (const [name, value] of Object.entries(raw)) {
    try {
      clusters.push(parseCluster(name, value));
    } catch (error) {
      if (!(error instanceof SettingError)) throw error;
      bad.push(error);
    }
  }
  if (bad.length > 0) throw new SettingErrors(bad);
  return clusters;
}

function parseCluster(name: string, raw: unknown): ClusterSettings {
  if (!isMapping(raw)) throw new SettingError([name], 'expected a mapping such as { hosts: ["db1:5432"] }');
  let hosts: string[] | undefined;
  let health: HealthSettings | undefined;
  let maxLagBytes: number | undefined;
  let balance: Balance = "round_robin";
  let tls: ClusterTls | undefined;
  for (const [key, value] of Object.entries(raw)) {
    const here = [name, key];
    switch (key as typeof CLUSTER_KEYS[number]) {
      case "hosts": {
        const list = Array.isArray(value) ? value : [value];
        if (list.length === 0 || !list.every((item) => typeof item === "string")) {
          throw new SettingError(here, 'expected a list of HOST:PORT such as ["db1:5432", "db2:5432"]');
        }
        hosts = list.map((item: string, index) => {
          try {
            parseAddress(item);
          } catch (error) {
            throw new SettingError([...here, index], (error as Error).message);
          }
          return item.trim();
        });
        const seen = hosts.find((host, index) => hosts!.indexOf(host) !== index);
        if (seen !== undefined) throw new SettingError(here, `${seen} is listed twice`);
        break;
      }
      case "health":
        health = parseHealth(value, here);
        break;
      case "max_lag":
        maxLagBytes = withPath(here, () => parseSize(value));
        break;
      case "balance":
        if (typeof value !== "string" || !Object.hasOwn(BALANCES, value)) {
          throw new SettingError(
            here,
            `expected one of ${Object.keys(BALANCES).join(", ")}, got ${JSON.stringify(value)}`,
          );
        }
        balance = value as Balance;
        break;
      case "tls":
        tls = parseTls(value, here);
        break;
      default:
        throw new SettingError(here, `unknown key (known keys: ${CLUSTER_KEYS.join(", ")})`);
    }
  }
  if (hosts === undefined) throw new SettingError([name], 'a cluster needs hosts: ["HOST:PORT", ...]');
  return { name, hosts, health, maxLagBytes, balance, tls };
}

function parseHealth(raw: unknown, path: (string | number)[]): HealthSettings {
  if (!isMapping(raw)) throw new SettingError(path, "expected { interval, timeout, user, database }");
  let intervalMs: number = HEALTH_DEFAULTS.intervalMs;
  let timeoutMs: number = HEALTH_DEFAULTS.timeoutMs;
  let user: string | undefined;
  let database: string = HEALTH_DEFAULTS.database;
  for (const [key, value] of Object.entries(raw)) {
    const here = [...path, key];
    switch (key as typeof HEALTH_KEYS[number]) {
      case "interval":
      case "timeout": {
        const ms = withPath(here, () => parseDuration(value));
        if (ms <= 0) throw new SettingError(here, "must be more than 0");
        if (key === "interval") intervalMs = ms;
        else timeoutMs = ms;
        break;
      }
      case "user":
      case "database":
        if (typeof value !== "string" || value === "") {
          throw new SettingError(here, `expected a non-empty string, got ${JSON.stringify(value)}`);
        }
        if (key === "user") user = value;
        else database = value;
        break;
      default:
        throw new SettingError(here, `unknown key (known keys: ${HEALTH_KEYS.join(", ")})`);
    }
  }
  if (user === undefined) {
    throw new SettingError(
      path,
      "health checks need user: (a role that may log in; its password comes from auth.file)",
    );
  }
  return { intervalMs, timeoutMs, user, database };
}

function parseTls(raw: unknown, path: (string | number)[]): ClusterTls {
  if (!isMapping(raw)) throw new SettingError(path, "expected { mode, ca, server_name, negotiation }");
  const tls: ClusterTls = { mode: "disable", ca: undefined, serverName: undefined, negotiation: "postgres" };
  for (const [key, value] of Object.entries(raw)) {
    const here = [...path, key];
    if (key === "mode") {
      if (!CLUSTER_TLS_MODES.includes(value as UpstreamTlsMode)) {
        throw new SettingError(
          here,
          `expected one of ${CLUSTER_TLS_MODES.join(", ")}, got ${JSON.stringify(value)}`,
        );
      }
      tls.mode = value as UpstreamTlsMode;
    } else if (key === "negotiation") {
      if (!UPSTREAM_TLS_NEGOTIATIONS.includes(value as UpstreamTlsNegotiation)) {
        throw new SettingError(
          here,
          `expected one of ${UPSTREAM_TLS_NEGOTIATIONS.join(", ")}, got ${JSON.stringify(value)}`,
        );
      }
      tls.negotiation = value as UpstreamTlsNegotiation;
    } else if (key === "ca" || key === "server_name") {
      if (typeof value !== "string" || value === "") {
        throw new SettingError(here, `expected a non-empty string, got ${JSON.stringify(value)}`);
      }
      if (key === "ca") tls.ca = value;
      else tls.serverName = value;
    } else {
      throw new SettingError(here, `unknown key (known keys: ${TLS_KEYS.join(", ")})`);
    }
  }
  if ((tls.mode === "verify-ca" || tls.mode === "verify-full") && tls.ca === undefined) {
    throw new SettingError(
      path,
      `mode ${tls.mode} needs ca (the PEM file of the CA that signed the server's certificate)`,
    );
  }
  const negotiation = negotiationProblem(tls.mode, tls.negotiation);
  if (negotiation !== undefined) throw new SettingError(path, negotiation);
  return tls;
}

/**
 * What `--check` finds wrong between routes and clusters: a route to a cluster that does not exist, and a
 * target other than `any` to a cluster without health checks (nothing would ever learn the hosts' roles).
 * Paths are under `routes`.
 */
export function checkRoutesAgainstClusters(
  routes: readonly RouteRule[],
  clusters: readonly ClusterSettings[],
): SettingError[] {
  const byName = new Map(clusters.map((cluster) => [cluster.name, cluster]));
  const problems: SettingError[] = [];
  for (const route of routes) {
    const cluster = byName.get(route.cluster);
    if (!cluster) {
      problems.push(
        new SettingError(
          [route.index, "cluster"],
          `unknown cluster "${route.cluster}" (clusters: ${[...byName.keys()].join(", ") || "none"})`,
        ),
      );
    } else if (route.target !== "any" && cluster.health === undefined) {
      problems.push(
        new SettingError(
          [route.index, "target"],
          `target ${route.target} needs health checks on cluster "${cluster.name}" (clusters.${cluster.name}.health.user) to know its hosts' roles`,
        ),
      );
    }
  }
  return problems;
}

/**
 * `upstream: HOST:PORT`: one unchecked cluster of one host, and one route sending everyone to it, pooled
 * when the top-level `pool:` is given.
 */
export function singleUpstream(
  address: string,
  pool?: PoolSettings,
): { clusters: ClusterSettings[]; routes: RouteRule[] } {
  const cluster: ClusterSettings = {
    name: "upstream",
    hosts: [address],
    health: undefined,
    maxLagBytes: undefined,
    balance: "round_robin",
    tls: undefined,
  };
  const route: RouteRule = {
    index: 0,
    name: "upstream",
    label: "upstream",
    match: {},
    cluster: "upstream",
    target: "any",
    ...(pool ? { pool } : {}),
  };
  return { clusters: [cluster], routes: [route] };
}

function withPath<T>(path: (string | number)[], parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof RangeError && !(error instanceof SettingError)) {
      throw new SettingError(path, error.message);
    }
    throw error;
  }
}
