/**
 * pgrelay's flags, documented once: the parser (args.ts), `--help`, the README's "Command line" block and
 * pgrelay(1) all come from this table and the notes below it (scripts/gen_man.ts writes the README block and
 * the man pages; tests/deploy/docs.test.ts fails when they drift).
 */
export interface CliOption {
  readonly flag: string;
  readonly short?: string;
  /** The value's placeholder; absent for a switch. */
  readonly arg?: string;
  /** The config key the flag sets ("admin.listen": one key of a mapping); absent for flags of their own. */
  readonly key?: string;
  /** One line of `--help` each. */
  readonly help: readonly string[];
}

export const CLI_OPTIONS = [
  { flag: "config", short: "c", arg: "FILE", help: ["YAML config file; flags override its keys"] },
  { flag: "listen", arg: "HOST:PORT", key: "listen", help: ["where clients connect (default 127.0.0.1:6432)"] },
  { flag: "upstream", arg: "HOST:PORT", key: "upstream", help: ["the PostgreSQL server (default 127.0.0.1:5432)"] },
  { flag: "startup-timeout", arg: "DUR", key: "startup_timeout", help: ["time to finish connecting and authenticating (default 60s)"] },
  { flag: "connect-timeout", arg: "DUR", key: "connect_timeout", help: ["time to open the upstream connection (default 10s)"] },
  { flag: "max-message-size", arg: "SIZE", key: "max_message_size", help: ["largest message accepted from either side (default 1GiB - 1, the server's)"] },
  { flag: "log-level", arg: "LEVEL", key: "log_level", help: ["debug, info, warn or error (default info)"] },
  { flag: "admin", arg: "HOST:PORT", key: "admin.listen", help: ["serve /metrics, /healthz, /readyz and /sessions over HTTP there (default off)"] },
  { flag: "admin-token-file", arg: "FILE", key: "admin.token_file", help: ["bearer token the admin API requires (needed when --admin is not loopback)"] },
  { flag: "drain-timeout", arg: "DUR", key: "drain_timeout", help: ["on SIGTERM/SIGINT, time sessions get to finish (default 30s)"] },
  { flag: "workers", arg: "N", key: "workers", help: ["N processes share the listen port (SO_REUSEPORT, Linux); default 1"] },
  { flag: "tls-mode", arg: "MODE", key: "tls.mode", help: ["client leg: disable (default), terminate or passthrough"] },
  { flag: "tls-cert", arg: "FILE", key: "tls.cert", help: ["pgrelay's certificate (PEM), for terminate"] },
  { flag: "tls-key", arg: "FILE", key: "tls.key", help: ["pgrelay's private key (PEM), for terminate"] },
  { flag: "upstream-tls", arg: "MODE", key: "upstream_tls.mode", help: ["upstream leg: disable (default), prefer, require, verify-ca, verify-full"] },
  { flag: "upstream-ca", arg: "FILE", key: "upstream_tls.ca", help: ["CA certificate (PEM) that signed the server's, for verify-ca/verify-full"] },
  { flag: "auth-mode", arg: "MODE", key: "auth.mode", help: ["relay (default: auth messages pass untouched) or scram (pgrelay authenticates)"] },
  { flag: "auth-file", arg: "FILE", key: "auth.file", help: ['for scram: "user" "SCRAM-SHA-256$..." lines (PgBouncer\'s auth_file format)'] },
  { flag: "check", help: ["validate the config, read its TLS and auth files, and exit: 0 if valid, 2 with every error"] },
  {
    flag: "explain",
    arg: "KEY=VALUE...",
    help: [
      "show which policy rule decides for a connection, and why, then exit",
      "(0 allowed, 3 denied); keys: user, database, application_name,",
      "source, tls, time, replication, options, server_name;",
      "e.g. --explain user=alice database=prod source=10.1.2.3",
    ],
  },
  { flag: "help", short: "h", help: ["show this help"] },
  { flag: "version", short: "V", help: ["show the version, the runtime and the build commit"] },
] as const satisfies readonly CliOption[];

/** The paragraphs after the options, in `--help` and in pgrelay(1) (each a section there). */
export const CLI_NOTES = [
  {
    title: "Logs",
    text: "one JSON object per line on stderr.",
  },
  {
    title: "Signals",
    text: "SIGHUP reloads the config (policy, limits and audit included) for new sessions and reopens the audit " +
      "file; SIGTERM/SIGINT stop accepting, let sessions finish for drain_timeout, then end the rest with " +
      "FATAL 57P01 and exit 0; a second SIGTERM/SIGINT exits at once.",
  },
  {
    title: "Exit codes",
    text: "0 ok, 1 runtime failure (e.g. address in use), 2 bad flags or config, 3 --explain found the connection denied.",
  },
] as const;

/** "  -c, --config FILE           YAML config file; ...": one option's `--help` lines, text from column 30. */
export function helpLines(option: CliOption): string[] {
  const name = `${option.short ? `-${option.short}, ` : "    "}--${option.flag}${option.arg ? ` ${option.arg}` : ""}`;
  const [first = "", ...rest] = option.help;
  return [`  ${name.padEnd(27)} ${first}`, ...rest.map((line) => `${" ".repeat(30)}${line}`)];
}
