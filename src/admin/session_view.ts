/**
 * One session as `GET /sessions` shows it. `state` uses pg_stat_activity's words once the session is ready
 * (`active`, `idle`, `idle in transaction`, `idle in transaction (aborted)`), else the phase (`startup`,
 * `connecting`, `authenticating`, `passthrough`).
 */
import type { LiveSession } from "../core/proxy.ts";
import { formatAddress } from "../frontend/frontend.ts";

export interface SessionView {
  id: string;
  user: string;
  database: string;
  application_name: string;
  client: string;
  /** The route that chose the server (its name, else `routes[N]`; `upstream` for the upstream: form); null before routing. */
  route: string | null;
  /** The server this session is connected to, HOST:PORT; null before it connects. */
  host: string | null;
  state: string;
  phase: string;
  transaction_status: string;
  outstanding_requests: number;
  bytes_from_client: number;
  bytes_from_server: number;
  tls: boolean;
  client_tls: string;
  upstream_tls: boolean;
  backend_pid: number | null;
  /** Pooled, transaction mode: the pin reason that keeps the client on its server, or null. */
  pinned: string | null;
  replication: string;
  admitted_by: string | null;
  started_at: string;
  /** Set by the supervisor under `--workers`: the worker that holds the session. */
  worker?: number;
}

const READY_STATES = {
  idle: "idle",
  unknown: "idle",
  in_transaction: "idle in transaction",
  failed: "idle in transaction (aborted)",
} as const;

export function sessionView({ context, outstandingRequests }: LiveSession): SessionView {
  const state = context.phase !== "ready"
    ? context.phase
    : outstandingRequests > 0
    ? "active"
    : READY_STATES[context.transactionStatus];
  return {
    id: context.id,
    user: context.user,
    database: context.database,
    application_name: context.applicationName,
    client: formatAddress(context.client),
    route: context.route ?? null,
    host: context.upstream ? formatAddress(context.upstream) : null,
    state,
    phase: context.phase,
    transaction_status: context.transactionStatus,
    outstanding_requests: outstandingRequests,
    bytes_from_client: context.fromClient.bytes,
    bytes_from_server: context.fromServer.bytes,
    tls: context.tls,
    client_tls: context.clientTls,
    upstream_tls: context.upstreamTls,
    backend_pid: context.backendPid ?? null,
    pinned: context.pinned,
    replication: context.replication,
    admitted_by: context.admittedBy ?? null,
    started_at: new Date(context.startedAt).toISOString(),
  };
}
