/**
 * What pgrelay knows about one session: who connected to what, the server's backend key and parameters,
 * the transaction status and byte counts. Filled from the startup packet and the backend's replies only.
 */
import type { TransactionStatus } from "../protocol/codes.ts";
import type { PumpCounters } from "./relay_pump.ts";
import type { SocketAddress } from "./socket.ts";

export type SessionPhase = "startup" | "connecting" | "authenticating" | "ready" | "closed";

export class SessionContext {
  readonly id: string;
  readonly client: SocketAddress;
  readonly startedAt = Date.now();
  phase: SessionPhase = "startup";
  user = "";
  database = "";
  applicationName = "";
  protocol = "";
  /** Whether the client leg is encrypted (TLS is not implemented yet: always false today). */
  tls = false;
  /** The admission rule that let this session in. */
  admittedBy: string | undefined;
  upstream: SocketAddress | undefined;
  backendPid: number | undefined;
  backendSecret: Uint8Array | undefined;
  transactionStatus: TransactionStatus = "unknown";
  readonly parameters = new Map<string, string>();
  /** Bytes and backpressure stalls of each direction, kept current by the relay pumps. */
  readonly fromClient: PumpCounters = { bytes: 0, stalls: 0, stallSeconds: 0 };
  readonly fromServer: PumpCounters = { bytes: 0, stalls: 0, stallSeconds: 0 };
  framesFromClient = 0;
  framesFromServer = 0;

  constructor(id: string, client: SocketAddress) {
    this.id = id;
    this.client = client;
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
      tls: this.tls,
      upstream: this.upstream ? `${this.upstream.hostname}:${this.upstream.port}` : undefined,
      backend_pid: this.backendPid,
      transaction_status: this.transactionStatus,
      bytes_from_client: this.fromClient.bytes,
      bytes_from_server: this.fromServer.bytes,
      backpressure_stalls: this.fromClient.stalls + this.fromServer.stalls,
    };
  }
}
