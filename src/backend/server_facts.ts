/**
 * What pgrelay knows about one server connection, learned from the server's own frames: its address, whether
 * pgrelay's leg to it is TLS, the parameters it reported, its backend key and its transaction status. They
 * belong to the server connection, not to a client: under pooling they outlive the client that saw them.
 */
import type { TransactionStatus } from "../protocol/codes.ts";
import type { SocketAddress } from "../core/socket.ts";

export class ServerFacts {
  readonly address: SocketAddress;
  /** pgrelay's connection to this server is encrypted by pgrelay. */
  tls = false;
  readonly parameters = new Map<string, string>();
  backendPid: number | undefined;
  backendSecret: Uint8Array | undefined;
  transactionStatus: TransactionStatus = "unknown";
  /** Settings the server does not report that pgrelay SET on it for a pooled client, by lower-case name. */
  readonly applied = new Map<string, string>();
  /** The server sent its first ReadyForQuery: the login is over. */
  ready = false;

  constructor(address: SocketAddress) {
    this.address = address;
  }
}
