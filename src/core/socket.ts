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

export interface RelaySocket {
  readonly remoteAddress: SocketAddress;
  /** Installs the event handlers; reading starts once they are set. */
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
  readonly name: "deno" | "bun";
  listen: Listen;
  connect: Connector;
  serveHttp: ServeHttp;
}
