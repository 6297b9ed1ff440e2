/** pgrelay's configuration: the YAML keys, their defaults, and the validated shape the proxy runs with. */
import type { LogLevel } from "../core/logger.ts";
import type { SocketAddress } from "../core/socket.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../protocol/limits.ts";
import type { AuditSettings } from "../audit/audit_schema.ts";
import { type Limits, NO_LIMITS } from "../limits/limits_schema.ts";
import { DEFAULT_POLICY, type Policy } from "../policy/policy_schema.ts";
import type { ClientTlsMode, UpstreamTlsMode, UpstreamTlsNegotiation } from "../core/tls_settings.ts";
import { DEFAULT_UPSTREAM_REQUIRE_AUTH, type UpstreamAuthMethod } from "../backend/upstream_auth.ts";
import type { ClusterSettings } from "../routing/cluster_schema.ts";
import type { RouteRule } from "../routing/route_table.ts";
import { DEFAULT_HOLD_MS } from "../routing/acquire.ts";
import type { PoolSettings } from "../pool/pool_schema.ts";

export const CLIENT_TLS_MODES = ["disable", "terminate", "passthrough"] as const satisfies readonly ClientTlsMode[];
export const UPSTREAM_TLS_MODES = ["disable", "prefer", "require", "verify-ca", "verify-full"] as const satisfies readonly UpstreamTlsMode[];

export interface ClientTlsConfig {
  mode: ClientTlsMode;
  /** PEM files of pgrelay's own certificate and key (terminate). */
  cert: string | undefined;
  key: string | undefined;
  /** Refuse clients that do not encrypt, with FATAL 28000. */
  require: boolean;
}

export interface UpstreamTlsConfig {
  mode: UpstreamTlsMode;
  /** PEM file of the CA that signed the server's certificate (verify-ca, verify-full). */
  ca: string | undefined;
  /** Name the server's certificate must carry (verify-full); default: the upstream host. */
  serverName: string | undefined;
  /** libpq's sslnegotiation: postgres (SSLRequest first) or direct (PostgreSQL 17+: TLS at once, ALPN). */
  negotiation: UpstreamTlsNegotiation;
}

export const AUTH_MODES = ["relay", "scram"] as const;
export type AuthMode = typeof AUTH_MODES[number];

export interface AuthConfig {
  /** relay: every auth message passes untouched. scram: pgrelay authenticates clients itself. */
  mode: AuthMode;
  /** PgBouncer-style userlist with SCRAM verifiers (scram). */
  file: string | undefined;
  /** SQL returning a user's verifier, with the user name as $1 (scram); runs as `user`. */
  query: string | undefined;
  /** The role pgrelay logs in as to run `query`; its plaintext password is in `file`. */
  user: string | undefined;
  /** The database `query` runs in. */
  database: string;
  /** upstream_require_auth: what pgrelay answers when it logs in to the server itself (libpq's require_auth). */
  upstreamRequireAuth: UpstreamAuthMethod[];
}

export interface Config {
  listen: SocketAddress;
  upstream: SocketAddress;
  startupTimeoutMs: number;
  connectTimeoutMs: number;
  maxMessageBytes: number;
  logLevel: LogLevel;
  /** Where the admin HTTP endpoints listen; off when undefined. */
  adminListen: SocketAddress | undefined;
  /** A file holding the bearer token every admin request but /healthz and /readyz must carry; off when undefined. */
  adminTokenFile: string | undefined;
  /** On SIGTERM/SIGINT: how long sessions may finish before they get FATAL 57P01. */
  drainTimeoutMs: number;
  /** Processes sharing the listen port (SO_REUSEPORT); 1 runs the proxy in this process. */
  workers: number;
  tls: ClientTlsConfig;
  upstreamTls: UpstreamTlsConfig;
  auth: AuthConfig;
  /** Who may connect: ordered allow/deny rules on the startup message and connection facts. */
  policy: Policy;
  /** Connection limits, connect rate and per-session bandwidth. */
  limits: Limits;
  /** The audit log; off when undefined. */
  audit: AuditSettings | undefined;
  /** `clusters:`; empty: the `upstream:` form (one cluster of one host). */
  clusters: ClusterSettings[];
  /** `routes:`, first match wins; empty with no clusters: everyone goes to `upstream`. */
  routes: RouteRule[];
  /** `routing.hold_timeout`: how long a client waits for an eligible host before FATAL 57P03. */
  holdTimeoutMs: number;
  /** Top-level `pool:`: pooling for the route that plain `upstream:` implies; undefined: not pooled. */
  pool: PoolSettings | undefined;
  /** `max_server_connections`: server connections to one host over every pool; undefined: no cap. */
  maxServerConnections: number | undefined;
}

/** The YAML keys and their docs live in config_keys.ts. */
export { CONFIG_KEYS, type ConfigKey } from "./config_keys.ts";

export const DEFAULT_CONFIG: Config = {
  listen: { hostname: "127.0.0.1", port: 6432 },
  upstream: { hostname: "127.0.0.1", port: 5432 },
  startupTimeoutMs: 60_000,
  connectTimeoutMs: 10_000,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  logLevel: "info",
  adminListen: undefined,
  adminTokenFile: undefined,
  drainTimeoutMs: 30_000,
  workers: 1,
  tls: { mode: "disable", cert: undefined, key: undefined, require: false },
  upstreamTls: { mode: "disable", ca: undefined, serverName: undefined, negotiation: "postgres" },
  auth: { mode: "relay", file: undefined, query: undefined, user: undefined, database: "postgres", upstreamRequireAuth: [...DEFAULT_UPSTREAM_REQUIRE_AUTH] },
  policy: DEFAULT_POLICY,
  limits: NO_LIMITS,
  audit: undefined,
  clusters: [],
  routes: [],
  holdTimeoutMs: DEFAULT_HOLD_MS,
  pool: undefined,
  maxServerConnections: undefined,
};
