/**
 * The config file's keys, documented once: the validator's list of top-level keys, `--help`'s key list,
 * the README's config reference and pgrelay.yaml(5) all come from this table (scripts/gen_man.ts writes the
 * last two; tests/deploy/docs.test.ts fails when they drift, and tests/host/config_keys.test.ts checks the
 * nested keys and defaults against what the validator accepts). The order is the order of the docs.
 */
import { AUDIT_KEYS } from "../audit/audit_schema.ts";
import { LIMIT_KEYS } from "../limits/limits_schema.ts";

/** One key: what it takes, its default as written in YAML (absent: off or none), and what it does. */
export interface ConfigKeyDoc {
  readonly type: string;
  readonly default?: string;
  readonly text: string;
  /** The keys of a mapping value (or of each item of a list, or of each NAME: entry). */
  readonly keys?: { readonly [key: string]: ConfigKeyDoc };
}

const TIME = "duration";
const RATE_KEYS = {
  per_source: { type: "number", text: "per second, for each client address" },
  burst: { type: "number", text: "at once (the bucket's size)" },
} as const satisfies Record<string, ConfigKeyDoc>;
const limitKeys = {
  max_connections: { type: "number", text: LIMIT_KEYS.max_connections },
  per_user: { type: "number", text: LIMIT_KEYS.per_user },
  per_database: { type: "number", text: LIMIT_KEYS.per_database },
  per_source: { type: "number", text: LIMIT_KEYS.per_source },
  connect_rate: { type: "mapping", text: "new sessions per client address, a token bucket", keys: RATE_KEYS },
  cancel_rate: { type: "mapping", default: "{ per_source: 10, burst: 20 }", text: "CancelRequests per client address, a token bucket", keys: RATE_KEYS },
  bandwidth_per_session: { type: "rate", text: LIMIT_KEYS.bandwidth_per_session },
  startup: {
    type: "mapping",
    text: "connections not yet logged in",
    keys: {
      max_connections: { type: "number", text: "at once" },
      per_source: { type: "number", text: "at once from one client address" },
      ipv6_prefix: { type: "number", default: "64", text: "IPv6 clients count per network of this prefix length" },
    },
  },
} as const satisfies { [K in keyof typeof LIMIT_KEYS]: ConfigKeyDoc };
const auditKeys = {
  path: { type: "path", text: AUDIT_KEYS.path },
  queries: { type: "boolean", default: "true", text: "log every query; false: session events only" },
  max_query_length: { type: "number", default: "4096", text: "characters of query text kept; longer text is cut" },
  redact_literals: { type: "boolean", default: "false", text: "mask string and number literals in query text with ?" },
} as const satisfies { [K in keyof typeof AUDIT_KEYS]: ConfigKeyDoc };
const UPSTREAM_TLS_KEYS = {
  mode: { type: "disable|prefer|require|verify-ca|verify-full", default: "disable", text: "libpq's sslmode meanings" },
  ca: { type: "path", text: "PEM file of the CA that signed the server's certificate (verify-ca, verify-full)" },
  server_name: { type: "string", text: "the name the server's certificate must carry (verify-full); default: the host's" },
  negotiation: { type: "postgres|direct", default: "postgres", text: "postgres: SSLRequest first; direct: TLS at once with ALPN postgresql (PostgreSQL 17+, mode require or stricter)" },
} as const satisfies Record<string, ConfigKeyDoc>;
const POOL_KEYS = {
  mode: { type: "session|transaction", text: "session: a server per client until it leaves; transaction: a server per transaction" },
  size: { type: "number", text: "server connections per (host, database, user)" },
  min: { type: "number", default: "0", text: "kept open while idle" },
  reserve: { type: "number", default: "0", text: "more connections, once a client has waited reserve_timeout" },
  reserve_timeout: { type: TIME, default: "5s", text: "wait before reserve connections open" },
  wait_timeout: { type: TIME, default: "30s", text: "longest a client waits for a server connection (then ERROR 53300)" },
  max_waiting: { type: "number", default: "1000", text: "more waiting clients get ERROR 53300 at once" },
  idle_timeout: { type: TIME, default: "10m", text: "close server connections idle this long, down to min" },
  lifetime: { type: TIME, default: "1h", text: "replace a server connection this old when it is next released" },
  reset_query: { type: "string", default: "DISCARD ALL", text: "session mode: run when a client leaves" },
  on_pin: { type: "pin|error", default: "pin", text: "transaction mode: what session state that cannot be replayed does" },
} as const satisfies Record<string, ConfigKeyDoc>;

export const CONFIG_KEYS = {
  listen: { type: "HOST:PORT", default: "127.0.0.1:6432", text: "where clients connect; [::1]:6432 for IPv6; port 0 picks a free port (logged)" },
  upstream: { type: "HOST:PORT", default: "127.0.0.1:5432", text: "the PostgreSQL server every session goes to (without clusters)" },
  startup_timeout: { type: TIME, default: "60s", text: "from accept until the server's first ReadyForQuery (connect and authentication)" },
  connect_timeout: { type: TIME, default: "10s", text: "opening the upstream TCP connection and its TLS handshake" },
  max_message_size: {
    type: "size",
    default: "1073741823",
    text: "larger protocol messages from either side end the session with FATAL 08P01; the default is the server's own limit, 1GiB - 1",
  },
  log_level: { type: "debug|info|warn|error", default: "info", text: "JSON lines on stderr" },
  admin: {
    type: "mapping",
    text: "the admin HTTP listener: /metrics, /healthz, /readyz, /sessions, /clusters; off unless set",
    keys: {
      listen: { type: "HOST:PORT", text: "where it listens; a non-loopback address needs token_file" },
      token_file: { type: "path", text: "file holding the bearer token every request but /healthz and /readyz must carry" },
    },
  },
  drain_timeout: { type: TIME, default: "30s", text: "on SIGTERM/SIGINT, how long sessions may finish before FATAL 57P01" },
  workers: { type: "number", default: "1", text: "processes sharing the listen port with SO_REUSEPORT (1 to 64)" },
  tls: {
    type: "mapping",
    text: "the client leg",
    keys: {
      mode: { type: "disable|terminate|passthrough", default: "disable", text: "terminate: pgrelay is the TLS server; passthrough: the client's TLS goes through to the server" },
      cert: { type: "path", text: "pgrelay's certificate (PEM), for terminate; re-read on SIGHUP" },
      key: { type: "path", text: "pgrelay's private key (PEM), for terminate" },
      require: { type: "boolean", default: "false", text: "refuse clients that do not encrypt, with FATAL 28000" },
    },
  },
  upstream_tls: { type: "mapping", text: "the leg to the server", keys: UPSTREAM_TLS_KEYS },
  auth: {
    type: "mapping",
    text: "who authenticates clients",
    keys: {
      mode: { type: "relay|scram", default: "relay", text: "relay: auth messages pass untouched; scram: pgrelay authenticates clients itself" },
      file: { type: "path", text: 'userlist of "user" "SCRAM-SHA-256$..." lines (PgBouncer\'s auth_file format); plaintext passwords for user and health checks' },
      query: { type: "string", text: "SQL returning the verifier of a user not in file, with the user name as $1" },
      user: { type: "string", text: "the role pgrelay logs in as to run query" },
      database: { type: "string", default: "postgres", text: "the database query runs in" },
      upstream_require_auth: { type: "list", default: "[scram-sha-256]", text: "methods pgrelay answers when it logs in to a server itself (libpq's require_auth)" },
    },
  },
  policy: {
    type: "mapping",
    text: "who may connect (README.md: Connection policy)",
    keys: {
      default: { type: "allow|deny", default: "allow", text: "what applies when no rule matches" },
      enforce_on_reload: { type: "boolean", default: "false", text: "on SIGHUP, end live sessions the new rules deny (FATAL 57P01)" },
      rules: { type: "list", text: "{ name, allow: {...} } or { name, deny: {...} }, in order; the first rule whose every field matches decides" },
    },
  },
  limits: { type: "mapping", text: "connection limits, connect rate and bandwidth; every key is optional", keys: limitKeys },
  audit: { type: "mapping", text: "a JSON-lines audit log; off unless set", keys: auditKeys },
  clusters: {
    type: "mapping",
    text: "NAME: cluster entries, instead of upstream (README.md: Clusters and routes)",
    keys: {
      NAME: {
        type: "mapping",
        text: "one cluster",
        keys: {
          hosts: { type: "list", text: "HOST:PORT of each server" },
          health: {
            type: "mapping",
            text: "health checks (needed for any target but any)",
            keys: {
              interval: { type: TIME, default: "1s", text: "between checks of each host" },
              timeout: { type: TIME, default: "1s", text: "a check that takes longer fails" },
              user: { type: "string", text: "the role checks log in as; its plaintext password is in auth.file" },
              database: { type: "string", default: "postgres", text: "where checks connect" },
            },
          },
          max_lag: { type: "size", text: "standbys further behind the primary are not chosen" },
          balance: { type: "round_robin|random|least_connections", default: "round_robin", text: "how an eligible standby is picked" },
          tls: { type: "mapping", text: "overrides upstream_tls for this cluster", keys: UPSTREAM_TLS_KEYS },
        },
      },
    },
  },
  routes: {
    type: "list",
    text: "which cluster and target each session gets; the first match wins",
    keys: {
      name: { type: "string", text: "the route's name, in logs, metrics and /sessions" },
      match: { type: "mapping", text: "the policy's match fields plus server_name (the client's TLS SNI); absent: everyone" },
      cluster: { type: "string", text: "a NAME of clusters" },
      target: { type: "any|read-write|read-only|primary|standby|prefer-standby", text: "libpq's target_session_attrs" },
      pool: { type: "mapping", text: "pool this route's server connections (needs auth.mode scram); absent: one server connection per client", keys: POOL_KEYS },
    },
  },
  routing: {
    type: "mapping",
    text: "routing settings",
    keys: {
      hold_timeout: { type: TIME, default: "10s", text: "how long a client waits for an eligible host before FATAL 57P03" },
    },
  },
  pool: { type: "mapping", text: "pooling for the route plain upstream: implies (with routes:, put pool: in each route)", keys: POOL_KEYS },
  max_server_connections: { type: "number", text: "server connections pgrelay opens to one host over all its pools; absent: no cap" },
} as const satisfies Record<string, ConfigKeyDoc>;

export type ConfigKey = keyof typeof CONFIG_KEYS;

/** What every config file may contain besides keys, for the docs. */
export const CONFIG_NOTES = [
  "Unknown keys are errors, and so are cross-key mistakes (terminate without cert and key, verify-full without ca, " +
  "passthrough with upstream TLS, require with mode disable), each reported with the file, line and key.",
  'Durations: "500ms", "60s", "2m" or a number of seconds. Sizes: 65536, "64KiB", "10MB", "1GiB". ' +
  'Rates: "10MB/s" or bytes a second.',
  "SIGHUP re-reads the file for sessions that start afterwards; a bad file keeps the old config and logs why. " +
  "listen and admin.listen need a restart.",
] as const;
