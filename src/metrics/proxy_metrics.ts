/**
 * pgrelay's metrics: the core reports into this through the MetricsSink interface; `render()` turns it
 * into Prometheus text at scrape time, adding what is read from live sessions then (active sessions,
 * bytes in flight) so the relay path never pays for it. Labels stay low-cardinality: no query text,
 * no client address, no user.
 */
import { AUDIT_TRACKING_OVERFLOWS, type AuditTrackingOverflow, type MetricsSink, type SessionOutcome } from "../core/metrics_sink.ts";
import { MAX_TRACKED_REQUESTS } from "../core/tracking_usage.ts";
import type { SessionContext } from "../core/session_context.ts";
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, SESSION_BUCKETS } from "./prometheus.ts";
import type { HostRecord } from "../routing/host_state.ts";
import { HOST_ROLES } from "../routing/target.ts";
import type { PoolSnapshot } from "../pool/pool_registry.ts";
import { PoolMetrics } from "./pool_metrics.ts";

/** What the proxy knows at scrape time. */
export interface LiveState {
  sessions: readonly SessionContext[];
  /** Bytes accepted by write() but not yet taken by the OS, over all sessions. */
  bufferedBytes: number;
  /** The last upstream probe: 1 reachable, 0 not, undefined not probed. */
  upstreamUp: number | undefined;
  draining: boolean;
  /** Connection-limit slots held now, per limit kind (absent without an admission gate). */
  limitSlots?: Readonly<Record<string, number>> | undefined;
  /**
   * The health-checked clusters' hosts (absent without health checks): then pgrelay_upstream_up is per
   * host from the checks, with pgrelay_upstream_role and pgrelay_upstream_lag_bytes.
   */
  clusters?: readonly { name: string; hosts: readonly HostRecord[] }[] | undefined;
  /** The pools' snapshot (absent or empty without pooling: the pool families are still rendered). */
  pools?: readonly PoolSnapshot[] | undefined;
  /** With health checks: each route and whether its cluster has a host eligible for its target now. */
  routes?: readonly { route: string; cluster: string; target: string; ready: boolean }[] | undefined;
  /** Configured connection-limit caps that bound the whole process (`max_connections`), when set. */
  limitCaps?: Readonly<Record<string, number>> | undefined;
  /** When each certificate pgrelay loaded expires, by its config key (read by the host at start and reload). */
  certificates?: readonly { certificate: string; notAfterSeconds: number }[] | undefined;
}

const letter = (type: number) => type >= 32 && type < 127 ? String.fromCharCode(type) : `0x${type.toString(16)}`;

export class ProxyMetrics implements MetricsSink {
  /** The pool families; the pool registry reports into it (PoolRegistryOptions.metrics). */
  readonly pools = new PoolMetrics();
  readonly frontendMessages = new Float64Array(256);
  readonly backendMessages = new Float64Array(256);
  readonly #connections = new Counter("pgrelay_client_connections_total", "Client connections by outcome.");
  readonly #handshake = new Histogram("pgrelay_handshake_duration_seconds", "Time from accept to the server's first ReadyForQuery.", LATENCY_BUCKETS);
  readonly #sessionDuration = new Histogram("pgrelay_session_duration_seconds", "Length of ended sessions.", SESSION_BUCKETS);
  readonly #queryDuration = new Histogram("pgrelay_query_duration_seconds", "Time from Query to ReadyForQuery, or from Execute to its completion.", LATENCY_BUCKETS);
  readonly #errors = new Counter("pgrelay_server_errors_total", "ErrorResponses from the server, by SQLSTATE class (first two characters).");
  readonly #transactions = new Counter("pgrelay_transactions_total", "Transactions ended, from ReadyForQuery transitions.");
  readonly #connectFailures = new Counter("pgrelay_upstream_connect_failures_total", "Failed attempts to open an upstream connection.");
  readonly #encryption = new Counter("pgrelay_encryption_requests_total", "SSLRequest and GSSENCRequest packets and pgrelay's answer.");
  readonly #tls = new Counter("pgrelay_tls_sessions_total", "Sessions by how each leg is encrypted: client none|terminated|passthrough, upstream true|false.");
  readonly #auditDropped = new Counter("pgrelay_audit_events_dropped_total", "Audit events dropped because the audit sink could not keep up.");
  /** Plain numbers: these are counted per request of a flooding client, so no label lookup per call. */
  #queryTrackingOverflow = 0;
  readonly #auditTrackingOverflow: Record<AuditTrackingOverflow, number> = { requests: 0, statements: 0, portals: 0, commands: 0 };
  readonly #cancels = new Counter("pgrelay_cancel_requests_total", "CancelRequests: forwarded upstream, dropped by the cancel rate per source (rate_limited), or dropped because pgrelay did not issue the key or its session has ended (dropped).");
  readonly #routeSessions = new Counter("pgrelay_route_sessions_total", "Sessions routed, by the route that chose their cluster.");
  readonly #checkSeconds = new Histogram("pgrelay_upstream_check_seconds", "Duration of health checks of upstream hosts (failed ones included).", LATENCY_BUCKETS);
  #endedBytesFromClient = 0;
  #endedBytesFromServer = 0;
  #endedStalls = 0;
  #endedStallSeconds = 0;

  sessionAccepted(): void {}

  handshakeDone(seconds: number): void {
    this.#handshake.observe(seconds);
  }

  sessionOutcome(outcome: SessionOutcome): void {
    this.#connections.add(1, { outcome });
  }

  sessionEnded(context: SessionContext, seconds: number): void {
    this.#sessionDuration.observe(seconds);
    this.#endedBytesFromClient += context.fromClient.bytes;
    this.#endedBytesFromServer += context.fromServer.bytes;
    this.#endedStalls += context.fromClient.stalls + context.fromServer.stalls;
    this.#endedStallSeconds += context.fromClient.stallSeconds + context.fromServer.stallSeconds;
  }

  routeSession(route: string): void {
    this.#routeSessions.add(1, { route });
  }

  upstreamChecked(_cluster: string, _host: unknown, seconds: number): void {
    this.#checkSeconds.observe(seconds);
  }

  upstreamConnectFailed(): void {
    this.#connectFailures.add();
  }

  queryFinished(seconds: number): void {
    this.#queryDuration.observe(seconds);
  }

  serverError(sqlstate: string): void {
    this.#errors.add(1, { class: sqlstate.slice(0, 2) });
  }

  transactionEnded(kind: "commit" | "rollback"): void {
    this.#transactions.add(1, { result: kind });
  }

  encryptionRequest(kind: "ssl" | "gssenc", answer: "S" | "N"): void {
    this.#encryption.add(1, { kind, answer });
  }

  tlsSession(client: "none" | "terminated" | "passthrough", upstream: boolean): void {
    this.#tls.add(1, { client, upstream: String(upstream) });
  }

  auditEventsDropped(count: number): void {
    this.#auditDropped.add(count);
  }

  queryTrackingOverflow(): void {
    this.#queryTrackingOverflow++;
  }

  auditTrackingOverflow(what: AuditTrackingOverflow): void {
    this.#auditTrackingOverflow[what]++;
  }

  cancelRequest(result: "forwarded" | "rate_limited" | "dropped"): void {
    this.#cancels.add(1, { result });
  }

  render(live: LiveState): string {
    const gauge = (name: string, help: string, value: number, labels: Record<string, string> = {}) => {
      const g = new Gauge(name, help);
      g.set(value, labels);
      return g.render();
    };
    let bytesFromClient = this.#endedBytesFromClient;
    let bytesFromServer = this.#endedBytesFromServer;
    let stalls = this.#endedStalls;
    let stallSeconds = this.#endedStallSeconds;
    const phases = new Map<string, number>();
    for (const session of live.sessions) {
      bytesFromClient += session.fromClient.bytes;
      bytesFromServer += session.fromServer.bytes;
      stalls += session.fromClient.stalls + session.fromServer.stalls;
      stallSeconds += session.fromClient.stallSeconds + session.fromServer.stallSeconds;
      phases.set(session.phase, (phases.get(session.phase) ?? 0) + 1);
    }
    const active = new Gauge("pgrelay_client_connections_active", "Open client sessions by phase.");
    for (const phase of ["startup", "connecting", "authenticating", "ready"]) active.set(phases.get(phase) ?? 0, { phase });
    const bytes = new Counter("pgrelay_bytes_total", "Bytes relayed, by the side that sent them.");
    bytes.add(bytesFromClient, { from: "client" });
    bytes.add(bytesFromServer, { from: "server" });
    const messages = new Counter("pgrelay_messages_total", "Protocol messages relayed, by sender and type letter.");
    for (let type = 0; type < 256; type++) {
      if (this.frontendMessages[type]! > 0) messages.add(this.frontendMessages[type]!, { from: "client", type: letter(type) });
      if (this.backendMessages[type]! > 0) messages.add(this.backendMessages[type]!, { from: "server", type: letter(type) });
    }
    const queries = new Counter("pgrelay_queries_total", "Queries finished (simple queries and Executes).");
    queries.add(this.#queryDuration.count);
    const stallCount = new Counter("pgrelay_backpressure_stalls_total", "Times a relay paused reading for more than 1 ms because the other side was backed up.");
    stallCount.add(stalls);
    const stallTime = new Counter("pgrelay_backpressure_seconds_total", "Time relays spent paused waiting for the other side to drain.");
    stallTime.add(stallSeconds);
    const trackingOverflow = new Counter(
      "pgrelay_query_tracking_overflow_total",
      `Requests not timed because their session already had ${MAX_TRACKED_REQUESTS} unanswered (timing resumes once they are answered).`,
    );
    trackingOverflow.add(this.#queryTrackingOverflow);
    const auditOverflow = new Counter(
      "pgrelay_audit_tracking_overflow_total",
      "Requests, prepared statements, portals and result tags the audit log did not track because a per-session cap was reached.",
    );
    for (const what of AUDIT_TRACKING_OVERFLOWS) auditOverflow.add(this.#auditTrackingOverflow[what], { what });
    const slots = new Gauge("pgrelay_limit_slots_in_use", "Connection-limit slots held by admitted sessions, per limit kind (each admitted session holds one of each).");
    for (const [limit, held] of Object.entries(live.limitSlots ?? {})) slots.set(held, { limit });
    const caps = new Gauge("pgrelay_limit_slots_max", "Configured cap on the connection-limit slots of a kind that bounds the whole process (limits.max_connections).");
    for (const [limit, cap] of Object.entries(live.limitCaps ?? {})) caps.set(cap, { limit });
    const expiry = new Gauge(
      "pgrelay_tls_certificate_expiry_timestamp_seconds",
      "Unix time when a certificate pgrelay loaded expires (the earliest notAfter in its PEM file), by config key; re-read on reload.",
    );
    for (const { certificate, notAfterSeconds } of live.certificates ?? []) expiry.set(notAfterSeconds, { certificate });
    const routeReady = new Gauge("pgrelay_route_ready", "1 while the route's cluster has a host eligible for its target (health checks), 0 while its clients would wait.");
    for (const { route, cluster, target, ready } of live.routes ?? []) routeReady.set(ready ? 1 : 0, { route, cluster, target });
    this.#cancels.add(0, { result: "forwarded" });
    this.#cancels.add(0, { result: "rate_limited" });
    this.#cancels.add(0, { result: "dropped" });
    return [
      active.render(),
      this.#connections.render(),
      this.#handshake.render(),
      this.#sessionDuration.render(),
      bytes.render(),
      messages.render(),
      queries.render(),
      this.#queryDuration.render(),
      this.#errors.render(),
      this.#transactions.render(),
      this.#connectFailures.render(),
      live.clusters ? this.#renderHosts(live.clusters) : gauge("pgrelay_upstream_up", "1 if the last probe of the upstream connected, 0 if not.", live.upstreamUp ?? 0),
      live.routes && live.routes.length > 0 ? routeReady.render() : "",
      this.#routeSessions.render(),
      this.#checkSeconds.render(),
      this.#encryption.render(),
      this.#tls.render(),
      stallCount.render(),
      (this.#auditDropped.add(0), this.#auditDropped.render()),
      trackingOverflow.render(),
      auditOverflow.render(),
      stallTime.render(),
      gauge("pgrelay_buffered_bytes", "Bytes queued in per-session write buffers, waiting for a slow peer.", live.bufferedBytes),
      gauge("pgrelay_draining", "1 while pgrelay drains sessions before exiting.", live.draining ? 1 : 0),
      live.limitSlots ? slots.render() : "",
      live.limitCaps && Object.keys(live.limitCaps).length > 0 ? caps.render() : "",
      live.certificates && live.certificates.length > 0 ? expiry.render() : "",
      this.#cancels.render(),
      this.pools.render(live.pools ?? []),
    ].join("");
  }

  #renderHosts(clusters: readonly { name: string; hosts: readonly HostRecord[] }[]): string {
    const up = new Gauge("pgrelay_upstream_up", "1 while the host passes its health checks (and accepts connections), 0 while it is out.");
    const role = new Gauge("pgrelay_upstream_role", "1 for the host's current role as health checks see it, 0 for the others.");
    const lag = new Gauge("pgrelay_upstream_lag_bytes", "How far a standby's replay is behind the primary's current WAL position, in bytes.");
    for (const cluster of clusters) {
      for (const host of cluster.hosts) {
        const labels = { cluster: cluster.name, host: host.host };
        up.set(host.up ? 1 : 0, labels);
        for (const name of HOST_ROLES) role.set(host.role === name ? 1 : 0, { ...labels, role: name });
        if (host.lag_bytes !== null) lag.set(host.lag_bytes, labels);
      }
    }
    return up.render() + role.render() + lag.render();
  }
}
