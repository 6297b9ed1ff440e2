/**
 * The contract between the runtime-agnostic core and a runtime adapter (Deno, Bun). Small on purpose:
 * deliver chunks, accept writes and report backpressure, pause and resume reading, end and destroy.
 */

export interface SocketAddress {
  hostname: string;
  port: number;
}

export interface SocketEvents {
  /**
   * A chunk arrived. The view is only valid until this call returns, unless the receiver calls `pause()`
   * on this socket during the call: then it stays valid until `resume()`. This lets adapters read into one
   * reused buffer while the relay forwards the same bytes without a copy.
   */
  data(chunk: Uint8Array): void;
  /** Everything queued by `write` has been handed to the operating system. */
  drain(): void;
  /**
   * The socket is closed: the peer closed it, it failed (`error` set), or `end()`/`destroy()` finished.
   * Called exactly once; no event follows it.
   */
  close(error?: Error): void;
}

/** What pgrelay presents as a TLS server on the client leg. */
export interface ServerTlsOptions {
  key: Uint8Array;
  cert: Uint8Array;
  /** ALPN protocols to accept (direct TLS requires "postgresql"). */
  alpnProtocols?: string[];
}

/** How pgrelay checks the upstream server's certificate (libpq sslmode meanings). */
export interface ClientTlsOptions {
  /** "none": encrypt only; "ca": chain must lead to `ca`; "full": chain and host name. */
  verify: "none" | "ca" | "full";
  ca?: Uint8Array;
  /** The name the certificate must carry (verify "full"); defaults to the upstream host. */
  serverName: string;
  /** ALPN protocols to offer (direct TLS offers "postgresql"). */
  alpnProtocols?: string[];
}

/** What `upgradeTls` rejects with when the peer closes or resets the connection before the handshake ends. */
export class TlsPeerClosedError extends Error {
  override name = "TlsPeerClosedError";
}

export type TlsUpgrade =
  /** `replay`: bytes already read that belong to the handshake (direct TLS's first chunk). */
  | { role: "server"; server: ServerTlsOptions; replay?: Uint8Array }
  | { role: "client"; client: ClientTlsOptions };

/** Facts about an established TLS session. */
export interface TlsInfo {
  protocol: string;
  cipher: string;
  alpn: string | undefined;
  /** The SNI host name the client sent (server side of pgrelay's TLS); undefined without one. */
  serverName?: string | undefined;
}

export interface RelaySocket {
  readonly remoteAddress: SocketAddress;
  /** Set once the socket carries TLS. */
  readonly tls?: TlsInfo | undefined;
  /**
   * Starts TLS on this connection (after SSLRequest and its answer) and resolves with the encrypted
   * socket, which replaces this one. Only adapters that can do it define it.
   */
  upgradeTls?(options: TlsUpgrade): Promise<RelaySocket>;
  /** Installs the event handlers; reading starts once they are set. Calling it again replaces them. */
  listen(events: SocketEvents): void;
  /**
   * Queues bytes for the peer. Returns true when they were all handed to the operating system and the
   * caller may reuse the memory; false when some are queued: the caller must keep the bytes unchanged and
   * stop producing (pause its source) until `drain`.
   */
  write(bytes: Uint8Array): boolean;
  /** Bytes accepted by `write` that the operating system has not taken yet. */
  readonly pendingBytes: number;
  /** Stops delivering `data` until `resume`. */
  pause(): void;
  resume(): void;
  /** Flushes what is queued, then closes. */
  end(): void;
  /** Closes now, dropping anything queued. */
  destroy(): void;
}

/** Opens a connection to an upstream server. Rejects with an Error whose message names the cause. */
export type Connector = (address: SocketAddress, options: { timeoutMs: number }) => Promise<RelaySocket>;

export interface Listener {
  /** The address actually bound (port 0 resolves to the chosen port). */
  readonly address: SocketAddress;
  /** Stops accepting; open sockets are not touched. */
  close(): Promise<void>;
}

export interface ListenOptions {
  /** SO_REUSEPORT: several processes share the port and the kernel spreads connections over them. */
  reusePort?: boolean;
}

/** Starts accepting connections, handing each socket to `accept`. */
export type Listen = (
  address: SocketAddress,
  accept: (socket: RelaySocket) => void,
  options?: ListenOptions,
) => Promise<Listener>;

/** Serves HTTP with a web-standard handler (the admin endpoints). */
export type ServeHttp = (address: SocketAddress, handler: (request: Request) => Promise<Response>) => Promise<Listener>;

/** What an adapter provides to the core. */
export interface RuntimeAdapter {
  readonly name: "deno" | "bun" | "node";
  listen: Listen;
  connect: Connector;
  serveHttp: ServeHttp;
}
