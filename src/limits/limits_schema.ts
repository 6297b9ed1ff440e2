/**
 * The `limits:` section.
 *
 * ```yaml
 * limits: { max_connections: 1000, per_user: 100, per_database: 200, per_source: 50,
 *           connect_rate: { per_source: 20, burst: 40 }, cancel_rate: { per_source: 10, burst: 20 },
 *           bandwidth_per_session: "10MB/s", startup: { max_connections: 500, per_source: 20, ipv6_prefix: 64 } }
 * ```
 * Connection limits count admitted sessions (from the StartupMessage until the session ends). `connect_rate`
 * is a token bucket per client address: `per_source` new sessions a second, up to `burst` at once.
 * `cancel_rate` is the same for CancelRequests (each opens an upstream connection), on by default.
 * `startup` counts connections from accept until they are ready (or passthrough, or closed), before any
 * byte is read: the cap on clients that have not logged in. IPv6 clients count per `ipv6_prefix` block.
 */
import { SettingError } from "../config/config_error.ts";
import { parseSize } from "../config/units.ts";

export interface Limits {
  maxConnections: number | undefined;
  perUser: number | undefined;
  perDatabase: number | undefined;
  perSource: number | undefined;
  connectRate: { perSource: number; burst: number } | undefined;
  /** CancelRequests a second per client address; DEFAULT_CANCEL_RATE when absent. */
  cancelRate: { perSource: number; burst: number } | undefined;
  /** Bytes per second toward the client, per session. */
  bandwidthPerSession: number | undefined;
  /** Connections still in their startup phase, at once and per source (IPv6: per `ipv6Prefix` block). */
  startup: StartupLimits | undefined;
}

export interface StartupLimits {
  maxConnections: number | undefined;
  perSource: number | undefined;
  /** Leading bits of an IPv6 address that name one source (64 unless configured). */
  ipv6Prefix: number;
}

/** One IPv6 host usually holds a whole /64. */
export const DEFAULT_IPV6_SOURCE_PREFIX = 64;

export const NO_LIMITS: Limits = {
  maxConnections: undefined,
  perUser: undefined,
  perDatabase: undefined,
  perSource: undefined,
  connectRate: undefined,
  cancelRate: undefined,
  bandwidthPerSession: undefined,
  startup: undefined,
};

/** The cancel rate when `cancel_rate` is not set: 10 CancelRequests a second per client address, 20 at once. */
export const DEFAULT_CANCEL_RATE = { perSource: 10, burst: 20 } as const;

export const LIMIT_KEYS = {
  max_connections: "sessions through this pgrelay at once",
  per_user: "sessions of one user at once",
  per_database: "sessions to one database at once",
  per_source: "sessions from one client address at once",
  connect_rate: "{ per_source: N, burst: M }: new sessions a second per client address, M at once",
  cancel_rate: "{ per_source: N, burst: M }: CancelRequests a second per client address, M at once (default 10, 20)",
  bandwidth_per_session: 'bytes a second toward each client, such as "10MB/s"',
  startup:
    "{ max_connections: N, per_source: M, ipv6_prefix: 64 }: connections not yet logged in, at once and per client address (IPv6: per /64)",
} as const;

const STARTUP_KEYS = ["max_connections", "per_source", "ipv6_prefix"] as const;

const count = (value: unknown, path: (string | number)[], allowZero = false): number => {
  if (typeof value !== "number" || !Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new SettingError(
      path,
      `expected a whole number of at least ${allowZero ? 0 : 1}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
};

/** "10MB/s", "512KiB/s", or a number of bytes a second. */
export function parseBandwidth(value: unknown): number {
  const text = typeof value === "string" ? value.trim().replace(/\/s$/, "") : value;
  let bytes: number;
  try {
    bytes = parseSize(text);
  } catch {
    throw new RangeError(
      `expected a rate such as "10MB/s", "512KiB/s" or a number of bytes a second, got ${
        JSON.stringify(value)
      }`,
    );
  }
  if (bytes < 1024) throw new RangeError(`must be at least 1KiB/s, got ${JSON.stringify(value)}`);
  return bytes;
}

/** A token bucket per client address: `{ per_source: N, burst: M }`, the burst defaulting to the rate. */
function parseRate(value: unknown, key: string, example: string): { perSource: number; burst: number } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SettingError([key], `expected a mapping such as ${example}, got ${JSON.stringify(value)}`);
  }
  const rate = value as Record<string, unknown>;
  for (const sub of Object.keys(rate)) {
    if (sub !== "per_source" && sub !== "burst") {
      throw new SettingError([key, sub], "unknown key (known keys: per_source, burst)");
    }
  }
  if (rate.per_source === undefined) throw new SettingError([key, "per_source"], `missing: expected a mapping such as ${example}`);
  const perSource = count(rate.per_source, [key, "per_source"]);
  const burst = rate.burst === undefined ? perSource : count(rate.burst, [key, "burst"]);
  return { perSource, burst };
}

export function parseLimits(raw: unknown): Limits {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SettingError(
      [],
      `expected a mapping with keys such as max_connections: and per_user: (${
        Object.keys(LIMIT_KEYS).join(", ")
      })`,
    );
  }
  const limits: Limits = { ...NO_LIMITS };
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    switch (key) {
      case "max_connections":
        limits.maxConnections = count(value, [key], true);
        break;
      case "per_user":
        limits.perUser = count(value, [key], true);
        break;
      case "per_database":
        limits.perDatabase = count(value, [key], true);
        break;
      case "per_source":
        limits.perSource = count(value, [key], true);
        break;
      case "connect_rate":
        limits.connectRate = parseRate(value, key, "{ per_source: 20, burst: 40 }");
        break;
      case "cancel_rate":
        limits.cancelRate = parseRate(value, key, "{ per_source: 10, burst: 20 }");
        break;
      case "bandwidth_per_session":
        try {
          limits.bandwidthPerSession = parseBandwidth(value);
        } catch (error) {
          throw new SettingError([key], (error as Error).message);
        }
        break;
      case "startup":
        limits.startup = parseStartupLimits(value);
        break;
      default:
        throw new SettingError([key], `unknown key (known keys: ${Object.keys(LIMIT_KEYS).join(", ")})`);
    }
  }
  return limits;
}

function parseStartupLimits(value: unknown): StartupLimits {
  const example = "{ max_connections: 500, per_source: 20, ipv6_prefix: 64 }";
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SettingError(["startup"], `expected a mapping such as ${example}`);
  }
  const raw = value as Record<string, unknown>;
  for (const sub of Object.keys(raw)) {
    if (!(STARTUP_KEYS as readonly string[]).includes(sub)) {
      throw new SettingError(["startup", sub], `unknown key (known keys: ${STARTUP_KEYS.join(", ")})`);
    }
  }
  if (raw.max_connections === undefined && raw.per_source === undefined) {
    throw new SettingError(["startup"], `expected max_connections or per_source (or both), such as ${example}`);
  }
  const prefix = raw.ipv6_prefix ?? DEFAULT_IPV6_SOURCE_PREFIX;
  if (typeof prefix !== "number" || !Number.isInteger(prefix) || prefix < 1 || prefix > 128) {
    throw new SettingError(["startup", "ipv6_prefix"], `expected a prefix length from 1 to 128, got ${JSON.stringify(raw.ipv6_prefix)}`);
  }
  return {
    maxConnections: raw.max_connections === undefined ? undefined : count(raw.max_connections, ["startup", "max_connections"]),
    perSource: raw.per_source === undefined ? undefined : count(raw.per_source, ["startup", "per_source"]),
    ipv6Prefix: prefix,
  };
}
