/**
 * The one module that knows which flag parser pgrelay uses (`parseArgs` from node:util; JSR's @std/cli is
 * out of reach). Flags override the config file.
 */
import { parseArgs } from "node:util";

export interface CliArgs {
  help: boolean;
  version: boolean;
  check: boolean;
  /** `--explain KEY=VALUE...`: the facts to explain the policy decision for. */
  explain?: string[];
  config?: string;
  /** Config keys set by flags, validated like the file's values (nested keys as mappings). */
  overrides: Record<string, unknown>;
}

const OVERRIDE_FLAGS = [
  "listen",
  "upstream",
  "startup-timeout",
  "connect-timeout",
  "max-message-size",
  "log-level",
  "drain-timeout",
  "workers",
] as const;

/** Flags that set one key of a nested mapping: flag -> [top-level key, nested key]. */
const NESTED_FLAGS = {
  "admin": ["admin", "listen"],
  "admin-token-file": ["admin", "token_file"],
  "tls-mode": ["tls", "mode"],
  "tls-cert": ["tls", "cert"],
  "tls-key": ["tls", "key"],
  "upstream-tls": ["upstream_tls", "mode"],
  "upstream-ca": ["upstream_tls", "ca"],
  "auth-mode": ["auth", "mode"],
  "auth-file": ["auth", "file"],
} as const;

export function parseCliArgs(argv: readonly string[]): CliArgs {
  const { values, positionals } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "V" },
      check: { type: "boolean" },
      explain: { type: "boolean" },
      config: { type: "string", short: "c" },
      ...Object.fromEntries([...OVERRIDE_FLAGS, ...Object.keys(NESTED_FLAGS)].map((flag) => [flag, { type: "string" as const }])),
    },
  });
  if (positionals.length > 0 && values.explain !== true) {
    throw new TypeError(`unexpected argument "${positionals[0]}": pgrelay takes only flags (and KEY=VALUE words after --explain)`);
  }
  const overrides: Record<string, unknown> = {};
  for (const flag of OVERRIDE_FLAGS) {
    const value = (values as Record<string, unknown>)[flag];
    if (typeof value === "string") overrides[flag.replaceAll("-", "_")] = value;
  }
  for (const [flag, [key, nested]] of Object.entries(NESTED_FLAGS)) {
    const value = (values as Record<string, unknown>)[flag];
    if (typeof value === "string") overrides[key] = { ...(overrides[key] as object | undefined), [nested]: value };
  }
  const args: CliArgs = {
    help: values.help === true,
    version: values.version === true,
    check: values.check === true,
    overrides,
  };
  if (typeof values.config === "string") args.config = values.config;
  if (values.explain === true) args.explain = positionals;
  return args;
}

export const HELP = `pgrelay: an identity PostgreSQL wire-protocol proxy

Usage:
  pgrelay [options]                  (deno run -A mod.ts [options] | bun mod.ts [options])

Options:
  -c, --config FILE           YAML config file; flags override its keys
      --listen HOST:PORT      where clients connect (default 127.0.0.1:6432)
      --upstream HOST:PORT    the PostgreSQL server (default 127.0.0.1:5432)
      --startup-timeout DUR   time to finish connecting and authenticating (default 60s)
      --connect-timeout DUR   time to open the upstream connection (default 10s)
      --max-message-size SIZE largest message accepted from either side (default 1GiB)
      --log-level LEVEL       debug, info, warn or error (default info)
      --admin HOST:PORT       serve /metrics, /healthz, /readyz and /sessions over HTTP there (default off)
      --admin-token-file FILE bearer token the admin API requires (needed when --admin is not loopback)
      --drain-timeout DUR     on SIGTERM/SIGINT, time sessions get to finish (default 30s)
      --workers N             N processes share the listen port (SO_REUSEPORT, Linux); default 1
      --tls-mode MODE         client leg: disable (default), terminate or passthrough
      --tls-cert FILE         pgrelay's certificate (PEM), for terminate
      --tls-key FILE          pgrelay's private key (PEM), for terminate
      --upstream-tls MODE     upstream leg: disable (default), prefer, require, verify-ca, verify-full
      --upstream-ca FILE      CA certificate (PEM) that signed the server's, for verify-ca/verify-full
      --auth-mode MODE        relay (default: auth messages pass untouched) or scram (pgrelay authenticates)
      --auth-file FILE        for scram: "user" "SCRAM-SHA-256$..." lines (PgBouncer's auth_file format)
      --check                 validate the config, read its TLS and auth files, and exit: 0 if valid, 2 with every error
      --explain KEY=VALUE...  show which policy rule decides for a connection, and why, then exit
                              (0 allowed, 3 denied); keys: user, database, application_name,
                              source, tls, time, replication, options;
                              e.g. --explain user=alice database=prod source=10.1.2.3
  -h, --help                  show this help
  -V, --version               show the version

Config file keys: listen, upstream, startup_timeout, connect_timeout, max_message_size, log_level,
admin (listen, token_file), drain_timeout, workers, tls (mode, cert, key, require),
upstream_tls (mode, ca, server_name), auth (mode, file, query, user, database, upstream_require_auth), policy (default, enforce_on_reload, rules),
limits (max_connections, per_user, per_database, per_source, connect_rate, cancel_rate, bandwidth_per_session, startup),
audit (path, queries, max_query_length, redact_literals).
Durations: "500ms", "60s", "2m" (or a number of seconds). Sizes: 65536, "64KiB", "10MB", "1GiB".
Logs: one JSON object per line on stderr. Signals: SIGHUP reloads the config (policy, limits and audit
included) for new sessions and reopens the audit file;
SIGTERM/SIGINT stop accepting, let sessions finish for drain_timeout,
then end the rest with FATAL 57P01 and exit 0; a second SIGTERM/SIGINT exits at once.
Exit codes: 0 ok, 1 runtime failure (e.g. address in use), 2 bad flags or config.`;
