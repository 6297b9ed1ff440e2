/**
 * What pgrelay knows about one client session: who connected, with what, through which route, and its byte
 * counts. The server's facts (backend key, parameters, transaction status) belong to the server connection
 * the session is bound to: the getters below read them from there, for logs, the audit and the admin API.
 */
import type { ServerFacts } from "../backend/server_facts.ts";
import type { TransactionStatus } from "../protocol/codes.ts";
import type { ReplicationMode, StartupFacts } from "../protocol/startup_facts.ts";
import type { PumpCounters } from "./relay_pump.ts";
import type { SocketAddress } from "./socket.ts";
import type { TrackingUsage } from "./tracking_usage.ts";

export type SessionPhase = "startup" | "connecting" | "authenticating" | "ready" | "passthrough" | "closed";

/** How the client leg is encrypted: not at all, by pgrelay, or end to end through pgrelay to the server. */
export type ClientLegTls = "none" | "terminated" | "passthrough";

const NO_PARAMETERS: ReadonlyMap<string, string> = new Map();

export class SessionContext {
  readonly id: string;
  readonly client: SocketAddress;
  readonly startedAt = Date.now();
  phase: SessionPhase = "startup";
  user = "";
  database = "";
  applicationName = "";
  /** A replication connection: physical (`true`), logical (`database`), or not (`false`). */
  replication: ReplicationMode = "false";
  protocol = "";
  /** The admission rule that let this session in. */
  admittedBy: string | undefined;
  /** The server the session connects to or is bound to (set while connecting, for the log of a failed try). */
  upstream: SocketAddress | undefined;
  /** The route that chose this session's cluster (its name, else `routes[N]`). */
  route: string | undefined;
  /** The facts of the server connection the session is bound to now (none before it connects). */
  server: ServerFacts | undefined;
  clientTls: ClientLegTls = "none";
  /** Pooled (transaction mode): why the client keeps its server between transactions (a pin reason), or null. */
  pinned: string | null = null;

  get backendPid(): number | undefined {
    return this.server?.backendPid;
  }
  get backendSecret(): Uint8Array | undefined {
    return this.server?.backendSecret;
  }
  get transactionStatus(): TransactionStatus {
    return this.server?.transactionStatus ?? "unknown";
  }
  /** True when pgrelay's connection to the bound server is encrypted by pgrelay. */
  get upstreamTls(): boolean {
    return this.server?.tls ?? false;
  }
  /** The parameters the bound server reported (empty before it connects). */
  get parameters(): ReadonlyMap<string, string> {
    return this.server?.parameters ?? NO_PARAMETERS;
  }

  /** The policy's `tls` fact: the client's connection is encrypted (by pgrelay, or end to end). */
  get tls(): boolean {
    return this.clientTls !== "none";
  }
  /** TLS protocol and ALPN of the client leg, when pgrelay terminates it. */
  clientTlsProtocol: string | undefined;
  /** Bytes and backpressure stalls of each direction, kept current by the relay pumps. */
  readonly fromClient: PumpCounters = { bytes: 0, stalls: 0, stallSeconds: 0 };
  readonly fromServer: PumpCounters = { bytes: 0, stalls: 0, stallSeconds: 0 };
  framesFromClient = 0;
  framesFromServer = 0;
  /** The query timer's size, once relaying (read by tests; never logged). */
  queryTracking: TrackingUsage | undefined;
  /** The audit query tracker's size, when audit tracks this session's queries. */
  auditTracking: TrackingUsage | undefined;

  constructor(id: string, client: SocketAddress) {
    this.id = id;
    this.client = client;
  }

  /** Takes the names the server will use (see startupFacts), never the raw startup parameters. */
  adoptStartupFacts(facts: StartupFacts): void {
    this.user = facts.user;
    this.database = facts.database;
    this.applicationName = facts.applicationName;
    this.replication = facts.replication;
  }

  /** A plain object for logs and the admin API. */
  toJSON(): Record<string, unknown> {
    return {
      session: this.id,
      client: `${this.client.hostname}:${this.client.port}`,
      phase: this.phase,
      user: this.user,
      database: this.database,
      application_name: this.applicationName,
      replication: this.replication,
      tls: this.tls,
      upstream: this.upstream ? `${this.upstream.hostname}:${this.upstream.port}` : undefined,
      route: this.route,
      backend_pid: this.backendPid,
      transaction_status: this.transactionStatus,
      client_tls: this.clientTls,
      upstream_tls: this.upstreamTls,
      bytes_from_client: this.fromClient.bytes,
      bytes_from_server: this.fromServer.bytes,
      backpressure_stalls: this.fromClient.stalls + this.fromServer.stalls,
    };
  }
}
