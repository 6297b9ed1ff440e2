/** The command line: parse flags, load the config, run the proxy until a signal says stop. */
import process from "node:process";
import { ConfigError } from "../config/config_error.ts";
import type { Config } from "../host/config_schema.ts";
import { Proxy } from "../core/proxy.ts";
import { formatAddress } from "../frontend/frontend.ts";
import { nodeAdapter } from "../adapters/node.ts";
import { adapterFor } from "../adapters/runtime.ts";
import { needsTlsSockets } from "../core/tls_settings.ts";
import { relaySettingsOf } from "../host/relay_settings_of.ts";
import { createAdminHandler } from "../admin/admin_handler.ts";
import { requireBearerToken } from "../admin/bearer_guard.ts";
import { workerSessionIdPrefix } from "../admin/worker_session_id.ts";
import { isLoopbackHost } from "../config/loopback.ts";
import { readAdminToken } from "../host/admin_token.ts";
import type { Listener } from "../core/socket.ts";
import { ProxyMetrics } from "../metrics/proxy_metrics.ts";
import { notifySystemd } from "../host/sd_notify.ts";
import { CANCEL_PEERS_ENV, cancelPeersOf, superviseWorkers, WORKER_ENV } from "../host/worker_supervisor.ts";
import { type CliArgs, HELP, parseCliArgs } from "./args.ts";
import { JsonLogger } from "../host/json_logger.ts";
import { loadConfig } from "../host/load_config.ts";
import { versionLine } from "./version.ts";
import { AdmissionGate } from "../admission/admission_gate.ts";
import { StartupLimiter } from "../limits/startup_limiter.ts";
import { AuditLog } from "../audit/audit_log.ts";
import type { AuditSettings } from "../audit/audit_schema.ts";
import type { AuditWriter } from "../audit/audit_writer.ts";
import { openAuditWriter } from "../host/audit_file_writer.ts";
import { explain, explainRoute, parseExplainFacts } from "./explain.ts";
import { RouteTable } from "../routing/route_table.ts";
import { type CertificateExpiry, certificateExpiries } from "../host/certificate_expiry.ts";

/** 3: `--explain` found the connection denied. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, DENIED: 3 } as const;

const print = (text: string) => process.stdout.write(text + "\n");
const complain = (text: string) => process.stderr.write(text + "\n");

/** Runs pgrelay with these arguments; resolves with the exit code once it should exit. */
export async function main(argv: readonly string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (error) {
    complain(`pgrelay: ${(error as Error).message}\nRun "pgrelay --help" for usage.`);
    return EXIT.USAGE;
  }
  if (args.help) {
    print(HELP);
    return EXIT.OK;
  }
  if (args.version) {
    print(versionLine());
    return EXIT.OK;
  }
  let config: Config;
  try {
    config = await loadConfig(args.config, args.overrides);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.message.split("\n")) complain(`pgrelay: ${line}`);
    return EXIT.USAGE;
  }
  if (args.explain) {
    let report;
    let facts;
    try {
      facts = parseExplainFacts(args.explain);
      report = explain(config.policy, facts);
    } catch (error) {
      complain(`pgrelay: ${(error as Error).message}`);
      return EXIT.USAGE;
    }
    for (const line of report.lines) print(line);
    if (config.routes.length > 0) {
      const route = explainRoute(new RouteTable(config.routes), facts);
      for (const line of route.lines) print(line);
      if (!route.routed) return EXIT.DENIED;
    }
    return report.allowed ? EXIT.OK : EXIT.DENIED;
  }
  let adminToken: string | undefined;
  try {
    await relaySettingsOf(config); // reads and parses the TLS files
    adminToken = await readAdminToken(config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.message.split("\n")) complain(`pgrelay: ${line}`);
    return EXIT.USAGE;
  }
  if (args.check) {
    const rules = config.policy.rules.length;
    print(
      `pgrelay: config OK: listen ${formatAddress(config.listen)}, ` +
        (config.clusters.length > 0
          ? `clusters ${config.clusters.map((cluster) => `${cluster.name} (${cluster.hosts.length} host${cluster.hosts.length === 1 ? "" : "s"})`).join(", ")}, routes ${config.routes.length}, `
          : `upstream ${formatAddress(config.upstream)}, `) +
        `policy ${rules} rule${rules === 1 ? "" : "s"} (default ${config.policy.default}), ` +
        `audit ${config.audit ? config.audit.path : "off"}` +
        (config.adminListen ? `, admin ${formatAddress(config.adminListen)} (${adminToken === undefined ? "no token" : "bearer token"})` : ""),
    );
    return EXIT.OK;
  }
  const workerId = process.env[WORKER_ENV];
  const logger = new JsonLogger(config.logLevel, (line) => process.stderr.write(line), workerId ? { worker: Number(workerId), pid: process.pid } : {});
  if (workerId === undefined && config.workers > 1) {
    const reloadToken = async () => await readAdminToken(await loadConfig(args.config, args.overrides));
    return await superviseWorkers(config, logger, { token: adminToken, reloadToken });
  }
  return await serve(config, args, logger, workerId === undefined ? undefined : Number(workerId), adminToken);
}

async function serve(initial: Config, args: CliArgs, logger: JsonLogger, worker: number | undefined, initialToken: string | undefined): Promise<number> {
  const isWorker = worker !== undefined;
  let config = initial;
  let adminToken = initialToken;
  let settings = await relaySettingsOf(config);
  let certificates: readonly CertificateExpiry[] = await certificateExpiries(config);
  const clusterTls = config.clusters.some((cluster) => cluster.tls !== undefined && cluster.tls.mode !== "disable");
  const adapter = needsTlsSockets(settings.clientEncryption!, settings.upstreamEncryption!) || clusterTls ? nodeAdapter : adapterFor();
  const metrics = new ProxyMetrics();
  const gate = new AdmissionGate({ policy: config.policy, limits: config.limits });
  const startupLimiter = new StartupLimiter(config.limits);
  let auditWriter: AuditWriter | undefined;
  if (config.audit) {
    try {
      auditWriter = await openAuditWriter(config.audit.path);
    } catch (error) {
      complain(`pgrelay: cannot open the audit log "${config.audit.path}": ${(error as Error).message}`);
      return EXIT.FAILURE;
    }
  }
  let lastWriteErrorAt = -Infinity;
  const audit = new AuditLog(config.audit, auditWriter, {
    metrics,
    onWriteError: (error) => {
      if (performance.now() - lastWriteErrorAt < 10_000) return; // one line per 10 s, not one per event
      lastWriteErrorAt = performance.now();
      logger.log("error", "audit_write_failed", { error: error.message, dropped_total: audit.dropped });
    },
  });
  /** Writes what is queued before exit, but a stuck sink (a blocked stdout pipe) delays exit by 2 s at most. */
  const finishAudit = async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flushed = await Promise.race([
      audit.flush().then(() => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 2000)),
    ]);
    clearTimeout(timer);
    if (!flushed) logger.log("warn", "audit_flush_timeout", { dropped_total: audit.dropped });
    else await auditWriter?.close();
  };
  // Signals are wired before the proxy reports that it listens, so a supervisor may signal at once.
  let proxy: Proxy | undefined;
  let admin: Listener | undefined;
  let stopping = false;
  let exit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => exit = resolve);
  const stop = (signal: string) => {
    if (stopping) {
      logger.log("warn", "exit_now", { signal, sessions: proxy?.sessions.length ?? 0 });
      exit(EXIT.OK);
      return;
    }
    stopping = true;
    if (!isWorker) void notifySystemd("STOPPING=1");
    logger.log("info", "shutting_down", { signal, sessions: proxy?.sessions.length ?? 0, drain_timeout_ms: config.drainTimeoutMs });
    if (!proxy) return; // start() finishes, then sees `stopping`
    void proxy.drain(config.drainTimeoutMs).then(() => admin?.close()).then(finishAudit).then(() => exit(EXIT.OK));
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  /** The writer the reloaded audit settings need: the current one for the same path, else a new one. */
  const auditWriterFor = async (next: AuditSettings | undefined): Promise<AuditWriter | undefined> => {
    if (!next) return undefined;
    if (auditWriter && audit.settings?.path === next.path) return auditWriter;
    try {
      return await openAuditWriter(next.path);
    } catch (error) {
      throw new Error(`cannot open the audit log "${next.path}": ${(error as Error).message}`);
    }
  };
  const swapAudit = (next: AuditSettings | undefined, writer: AuditWriter | undefined) => {
    const old = auditWriter;
    auditWriter = writer;
    audit.configure(next, writer);
    if (old && old !== writer) void audit.flush().then(() => old.close());
  };
  process.on("SIGHUP", () => {
    if (!proxy || stopping) return;
    const running = proxy;
    if (!isWorker) void notifySystemd("RELOADING=1");
    // logrotate: the audit file is reopened on every SIGHUP, whether or not the config changed.
    // Lines recorded before the signal still go to the old file: flush the batch, then reopen.
    const reopened = audit.flush().then(() => auditWriter?.reopen())
      .catch((error: Error) => logger.log("error", "audit_reopen_failed", { error: error.message }));
    Promise.all([loadConfig(args.config, args.overrides), reopened]).then(async ([next]) => {
      for (const [key, now, then] of [["tls.mode", next.tls.mode, config.tls.mode], ["upstream_tls.mode", next.upstreamTls.mode, config.upstreamTls.mode]] as const) {
        if (now !== then) throw new Error(`${key} changed from ${then} to ${now}: restart pgrelay to change TLS modes`);
      }
      const nextClusterTls = next.clusters.some((cluster) => cluster.tls !== undefined && cluster.tls.mode !== "disable");
      if (nextClusterTls && !clusterTls && !needsTlsSockets(settings.clientEncryption!, settings.upstreamEncryption!)) {
        throw new Error("a cluster now uses upstream TLS and pgrelay started without TLS sockets: restart pgrelay");
      }
      const nextSettings = await relaySettingsOf(next, running.router);
      const nextToken = await readAdminToken(next);
      const nextCertificates = await certificateExpiries(next);
      if (nextToken === undefined && admin && !isLoopbackHost(admin.address.hostname)) {
        throw new Error(`admin.token_file cannot be removed while the admin API listens on ${formatAddress(admin.address)}, which is not loopback`);
      }
      const writer = await auditWriterFor(next.audit); // the steps that can fail: before anything changes
      for (const [key, now, then] of [
        ["listen", formatAddress(next.listen), formatAddress(config.listen)],
        ["admin", next.adminListen && formatAddress(next.adminListen), config.adminListen && formatAddress(config.adminListen)],
      ] as const) {
        if (now !== then) logger.log("warn", "reload_ignored", { key, value: now, reason: `changing ${key} needs a restart` });
      }
      settings = nextSettings;
      running.reconfigure({ ...settings, bandwidthPerSession: next.limits.bandwidthPerSession ?? 0 });
      gate.configure(next.policy, next.limits);
      startupLimiter.configure(next.limits);
      swapAudit(next.audit, writer);
      adminToken = nextToken;
      certificates = nextCertificates;
      if (next.policy.enforceOnReload) {
        const revoked = running.revoke((context) => {
          const error = gate.revocation(context);
          if (error) audit.record("revoked", context, { user: context.user, database: context.database, reason: "policy_revoked", sqlstate: error.code, message: error.message });
          return error;
        });
        logger.log("info", "policy_enforced", { sessions_revoked: revoked });
      }
      logger.level = next.logLevel;
      config = { ...next, listen: config.listen, adminListen: config.adminListen };
      logger.log("info", "config_reloaded", {
        upstream: formatAddress(next.upstream),
        clusters: next.clusters.map((cluster) => cluster.name),
        routes: next.routes.length,
        policy_rules: next.policy.rules.length,
        audit: next.audit?.path ?? "off",
      });
    }).catch((error: Error) => {
      logger.log("error", "config_reload_failed", { error: error.message, kept: "previous config" });
    }).finally(() => {
      if (!isWorker) void notifySystemd("READY=1");
    });
  });
  try {
    proxy = await Proxy.start(adapter, {
      ...settings,
      listen: config.listen,
      bandwidthPerSession: config.limits.bandwidthPerSession ?? 0,
      logger,
      metrics,
      reusePort: isWorker,
      admission: gate,
      auditor: audit,
      startupGate: startupLimiter,
      sessionIdPrefix: worker === undefined ? undefined : workerSessionIdPrefix(worker),
      workerId: worker ?? 0,
      cancelPeers: worker === undefined ? undefined : cancelPeersOf(process.env[CANCEL_PEERS_ENV]),
      poolMetrics: metrics.pools,
    });
  } catch (error) {
    complain(`pgrelay: cannot listen on ${formatAddress(config.listen)}: ${(error as Error).message}`);
    return EXIT.FAILURE;
  }
  if (config.adminListen) {
    try {
      const handler = createAdminHandler({
        proxy,
        metrics,
        admission: gate,
        pools: proxy.pools,
        certificates: () => certificates,
        onTerminated: (context, error) =>
          audit.record("terminated", context, { user: context.user, database: context.database, reason: "admin_terminated", sqlstate: error.code, message: error.message }),
      });
      admin = await adapter.serveHttp(config.adminListen, requireBearerToken(handler, () => adminToken));
      // A worker's admin endpoint is internal: the supervisor asks it and serves the combined answer.
      logger.log("info", isWorker ? "worker_admin_listening" : "admin_listening", {
        admin: formatAddress(admin.address),
        paths: ["/", "/metrics", "/healthz", "/readyz", "/sessions", "/clusters", "/pools"],
        token: adminToken !== undefined,
      });
    } catch (error) {
      complain(`pgrelay: cannot serve admin HTTP on ${formatAddress(config.adminListen)}: ${(error as Error).message}`);
      await proxy.close();
      return EXIT.FAILURE;
    }
  }
  if (stopping) {
    await proxy.drain(config.drainTimeoutMs);
    await admin?.close();
    await finishAudit();
    return EXIT.OK;
  }
  if (!isWorker) void notifySystemd("READY=1");
  return await exited;
}
