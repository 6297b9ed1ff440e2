/**
 * What the core reports for metrics. The core depends on this interface only; src/metrics implements it.
 * Message counts are plain arrays indexed by type byte, so counting a frame costs one increment.
 */
import type { HostState } from "../routing/host_state.ts";
import type { SessionContext } from "./session_context.ts";

export const SESSION_OUTCOMES = [
  "ok",
  "auth_failed",
  "denied",
  "limited",
  "server_rejected",
  "upstream_error",
  "protocol_error",
  "startup_timeout",
  "client_aborted",
  "cancel_request",
  "passthrough",
] as const;
export type SessionOutcome = typeof SESSION_OUTCOMES[number];

export interface MetricsSink {
  /** Frontend messages by type byte. */
  readonly frontendMessages: Float64Array;
  /** Backend messages by type byte. */
  readonly backendMessages: Float64Array;
  sessionAccepted(): void;
  /** The server's first ReadyForQuery, `seconds` after accept. */
  handshakeDone(seconds: number): void;
  /** How the session's connection attempt turned out; reported once, as soon as it is known. */
  sessionOutcome(outcome: SessionOutcome): void;
  sessionEnded(context: SessionContext, seconds: number): void;
  upstreamConnectFailed(): void;
  /** A session took this route (pgrelay_route_sessions_total). */
  routeSession?(route: string): void;
  /** A health check of a cluster's host finished (pgrelay_upstream_check_seconds). */
  upstreamChecked?(cluster: string, host: HostState, seconds: number, ok: boolean): void;
  /** A host's up/role changed (pgrelay_upstream_up, pgrelay_upstream_role). */
  upstreamChanged?(cluster: string, host: HostState): void;
  /** A simple query (to its ReadyForQuery) or an Execute (to its completion) finished. */
  queryFinished(seconds: number): void;
  /** An ErrorResponse from the server. */
  serverError(sqlstate: string): void;
  transactionEnded(kind: "commit" | "rollback"): void;
  /** An SSLRequest or GSSENCRequest and pgrelay's one-byte answer. */
  encryptionRequest(kind: "ssl" | "gssenc", answer: "S" | "N"): void;
  /** A session's legs are set up: how each is encrypted. */
  tlsSession(client: "none" | "terminated" | "passthrough", upstream: boolean): void;
  /** Audit events dropped because the audit sink could not keep up. */
  auditEventsDropped(count: number): void;
  /** A request not timed: its session already had MAX_TRACKED_REQUESTS unanswered (called once per request). */
  queryTrackingOverflow(): void;
  /** Something the audit's per-session tracking did not keep because a cap was reached. */
  auditTrackingOverflow(what: AuditTrackingOverflow): void;
  /** A CancelRequest: forwarded upstream, dropped by the cancel rate per source, or dropped for an unknown or stale key. */
  cancelRequest(result: "forwarded" | "rate_limited" | "dropped"): void;
}

/** What the audit's query tracking stops keeping at its caps. */
export const AUDIT_TRACKING_OVERFLOWS = ["requests", "statements", "portals", "commands"] as const;
export type AuditTrackingOverflow = typeof AUDIT_TRACKING_OVERFLOWS[number];

export const NO_METRICS: MetricsSink = {
  frontendMessages: new Float64Array(256),
  backendMessages: new Float64Array(256),
  sessionAccepted() {},
  handshakeDone() {},
  sessionOutcome() {},
  sessionEnded() {},
  upstreamConnectFailed() {},
  queryFinished() {},
  serverError() {},
  transactionEnded() {},
  encryptionRequest() {},
  tlsSession() {},
  auditEventsDropped() {},
  queryTrackingOverflow() {},
  auditTrackingOverflow() {},
  cancelRequest() {},
};
