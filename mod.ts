/**
 * pgrelay: an identity PostgreSQL wire-protocol proxy for Deno and Bun.
 *
 * As a program: `deno run -A mod.ts --listen 127.0.0.1:6432 --upstream 127.0.0.1:5432` or `bun mod.ts ...`.
 * As a library: `startProxy()` below.
 * @module
 */
import process from "node:process";
import { nodeAdapter } from "./src/adapters/node.ts";
import { adapterFor, type RuntimeName } from "./src/adapters/runtime.ts";
import { DEFAULT_CONFIG } from "./src/host/config_schema.ts";
import { SILENT_LOGGER, type Logger } from "./src/core/logger.ts";
import type { MetricsSink } from "./src/core/metrics_sink.ts";
import { Proxy } from "./src/core/proxy.ts";
import type { RelaySettings } from "./src/core/relay_settings.ts";
import type { SocketAddress } from "./src/core/socket.ts";
import { NO_CLIENT_TLS, NO_UPSTREAM_TLS, needsTlsSockets } from "./src/core/tls_settings.ts";
import type { Admission, Auditor } from "./src/core/session_hooks.ts";
import { AdmissionGate } from "./src/admission/admission_gate.ts";
import type { Policy } from "./src/policy/policy_schema.ts";
import type { Limits } from "./src/limits/limits_schema.ts";
import { StartupLimiter } from "./src/limits/startup_limiter.ts";

export { Proxy } from "./src/core/proxy.ts";
export type { Config } from "./src/host/config_schema.ts";
export type { Logger, LogLevel } from "./src/core/logger.ts";
export type { SessionContext } from "./src/core/session_context.ts";
export type { SocketAddress } from "./src/core/socket.ts";
export type { ClientTlsSettings, UpstreamTlsSettings } from "./src/core/tls_settings.ts";
export type { Admission, Auditor } from "./src/core/session_hooks.ts";
export { AdmissionGate } from "./src/admission/admission_gate.ts";
export { AuditLog } from "./src/audit/audit_log.ts";
export type { AuditSettings } from "./src/audit/audit_schema.ts";
export type { AuditWriter } from "./src/audit/audit_writer.ts";
export { parsePolicy } from "./src/policy/policy_schema.ts";
export { parseLimits } from "./src/limits/limits_schema.ts";
export { parseAudit } from "./src/audit/audit_schema.ts";

export interface StartProxyOptions extends Partial<RelaySettings> {
  /** Where clients connect (default 127.0.0.1:6432). */
  listen?: SocketAddress;
  /** Who may connect (see parsePolicy); with `limits`, builds the default admission step. */
  policy?: Policy;
  /** Connection limits and bandwidth (see parseLimits). */
  limits?: Limits;
  /** Admission step; by default an AdmissionGate built from `policy` and `limits` when either is given. */
  admission?: Admission;
  /** Audit observer, e.g. `new AuditLog(settings, writer)`. */
  auditor?: Auditor;
  /** Where the proxy reports events; silent by default. */
  logger?: Logger;
  metrics?: MetricsSink;
  /** Force an adapter; by default the one of the running runtime (node:tls sockets when TLS is on). */
  runtime?: RuntimeName;
}

/**
 * Starts a proxy in this process and resolves once it listens.
 *
 * @example
 * ```ts
 * const proxy = await startProxy({
 *   listen: { hostname: "127.0.0.1", port: 0 },
 *   upstream: { hostname: "127.0.0.1", port: 5432 },
 * });
 * console.log(`psql -h ${proxy.address.hostname} -p ${proxy.address.port}`);
 * await proxy.close();
 * ```
 */
export function startProxy(options: StartProxyOptions = {}): Promise<Proxy> {
  const { logger = SILENT_LOGGER, runtime, admission, auditor, policy, limits, ...settings } = options;
  const tls = needsTlsSockets(settings.clientEncryption ?? NO_CLIENT_TLS, settings.upstreamEncryption ?? NO_UPSTREAM_TLS);
  const gate = admission ??
    (policy || limits ? new AdmissionGate({ ...(policy ? { policy } : {}), ...(limits ? { limits } : {}) }) : undefined);
  const { listen, upstream, startupTimeoutMs, connectTimeoutMs, maxMessageBytes } = DEFAULT_CONFIG;
  return Proxy.start(tls ? nodeAdapter : adapterFor(runtime), {
    listen,
    upstream,
    startupTimeoutMs,
    connectTimeoutMs,
    maxMessageBytes,
    bandwidthPerSession: limits?.bandwidthPerSession ?? 0,
    ...settings,
    logger,
    admission: gate,
    auditor,
    startupGate: limits?.startup ? new StartupLimiter(limits) : undefined,
  });
}

if (import.meta.main) {
  const { main } = await import("./src/cli/main.ts");
  const { cliArguments } = await import("./src/host/arguments.ts");
  process.exit(await main(cliArguments()));
}
