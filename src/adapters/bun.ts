/**
 * Bun adapter: `Bun.listen` / `Bun.connect` sockets behind the core's RelaySocket contract.
 * Bun's `write` takes what the kernel accepts and returns the count; the shared write queue keeps the
 * unwritten tail as a view and flushes it on `drain`. Events before `listen` or while paused wait in the
 * shared event gate (Bun hands each `data` event a fresh buffer, so held views stay valid). Sockets allow
 * half-open connections: when the peer ends its side, what is queued still goes out before ours ends.
 */
import type {
  Listener,
  ListenOptions,
  RelaySocket,
  RuntimeAdapter,
  SocketAddress,
  SocketEvents,
} from "../core/socket.ts";
import { connectError } from "./connect_error.ts";
import { EventGate } from "./event_gate.ts";
import { withTimeout } from "./with_timeout.ts";
import { WriteQueue } from "./write_queue.ts";

/** The part of Bun's socket API this adapter uses (declared here so `deno check` covers this file). */
interface BunSocket {
  data: BunRelaySocket | undefined;
  readonly remoteAddress: string;
  readonly remotePort?: number;
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(enabled?: boolean): boolean;
  setKeepAlive(enabled?: boolean, delayMs?: number): boolean;
}

interface BunSocketHandlers {
  open?(socket: BunSocket): void;
  data(socket: BunSocket, data: Uint8Array): void;
  drain(socket: BunSocket): void;
  /** The peer ended its side (with `allowHalfOpen`; without it Bun closes both sides at once). */
  end(socket: BunSocket): void;
  close(socket: BunSocket, error?: Error): void;
  error?(socket: BunSocket, error: Error): void;
  connectError?(socket: BunSocket, error: Error): void;
}

interface BunListener {
  readonly hostname: string;
  readonly port: number;
  stop(closeActiveConnections?: boolean): void;
}

interface BunServer {
  readonly hostname: string;
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}

declare const Bun: {
  serve(
    options: { hostname: string; port: number; fetch: (request: Request) => Promise<Response> },
  ): BunServer;
  listen(
    options: {
      hostname: string;
      port: number;
      reusePort?: boolean;
      allowHalfOpen?: boolean;
      socket: BunSocketHandlers;
    },
  ): BunListener;
  connect(
    options: { hostname: string; port: number; allowHalfOpen?: boolean; socket: BunSocketHandlers },
  ): Promise<BunSocket>;
};

class BunRelaySocket implements RelaySocket {
  readonly remoteAddress: SocketAddress;
  readonly #socket: BunSocket;
  readonly #gate = new EventGate();
  readonly #queue: BunWriteQueue;
  /** end() or destroy() was called here: what the receiver has not taken yet is of no use any more. */
  #endedHere = false;

  constructor(socket: BunSocket) {
    this.#socket = socket;
    this.#queue = new BunWriteQueue(socket, this.#gate);
    this.remoteAddress = { hostname: socket.remoteAddress, port: socket.remotePort ?? 0 };
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
  }

  get pendingBytes(): number {
    return this.#queue.pendingBytes;
  }

  /** Bytes of read buffer this socket holds: none (Bun hands each `data` event a buffer of its own). */
  get readBufferBytes(): number {
    return 0;
  }

  listen(events: SocketEvents): void {
    this.#gate.listen(events);
  }

  write(bytes: Uint8Array): boolean {
    return this.#queue.write(bytes);
  }

  pause(): void {
    if (this.#gate.pause() && !this.#gate.closed) this.#socket.pause();
  }

  resume(): void {
    if (this.#gate.resume() && !this.#gate.closed) this.#socket.resume();
  }

  end(): void {
    this.#endedHere = true;
    this.#queue.end();
  }

  destroy(): void {
    if (this.#gate.closed) {
      this.#gate.discard();
      return;
    }
    this.#endedHere = true;
    this.#socket.terminate();
    this.onClose();
  }

  onData(chunk: Uint8Array): void {
    this.#gate.data(chunk);
  }

  onDrain(): void {
    this.#queue.ready();
  }

  /** The peer ended its side (allowHalfOpen): send what is queued, then end ours. */
  onEnd(): void {
    this.#queue.end();
  }

  onClose(error?: Error): void {
    this.#queue.close();
    if (this.#endedHere) this.#gate.discard();
    this.#gate.close(error);
  }
}

/** The shared write queue on a Bun socket: `write` takes what the kernel accepts, `drain` says it can take more. */
class BunWriteQueue extends WriteQueue {
  readonly #socket: BunSocket;
  readonly #gate: EventGate;

  constructor(socket: BunSocket, gate: EventGate) {
    super();
    this.#socket = socket;
    this.#gate = gate;
  }

  protected send(bytes: Uint8Array): number {
    const written = this.#socket.write(bytes);
    return written > 0 ? written : 0; // Bun answers -1 on a closed socket; its close event follows
  }

  protected onDrain(): void {
    this.#gate.drain();
  }

  protected onEnd(): void {
    this.#socket.end();
  }
}

const handlers = (accept?: (socket: RelaySocket) => void): BunSocketHandlers => ({
  open(socket) {
    socket.data = new BunRelaySocket(socket);
    accept?.(socket.data);
  },
  data: (socket, chunk) => socket.data?.onData(chunk),
  drain: (socket) => socket.data?.onDrain(),
  end: (socket) => socket.data?.onEnd(),
  close: (socket, error) => socket.data?.onClose(error),
  error: (socket, error) => socket.data?.onClose(error),
});

function listen(
  address: SocketAddress,
  accept: (socket: RelaySocket) => void,
  options: ListenOptions = {},
): Promise<Listener> {
  const listener = Bun.listen({
    hostname: address.hostname,
    port: address.port,
    reusePort: options.reusePort === true,
    allowHalfOpen: true,
    socket: handlers(accept),
  });
  return Promise.resolve({
    address: { hostname: listener.hostname, port: listener.port },
    close() {
      listener.stop(false);
      return Promise.resolve();
    },
  });
}

/** Shared by every outgoing socket (each carries its own state in `socket.data`), so none costs closures. */
const CONNECT_HANDLERS = handlers();

async function connect(address: SocketAddress, options: { timeoutMs: number }): Promise<RelaySocket> {
  const socket = await withTimeout(
    Bun.connect({
      hostname: address.hostname,
      port: address.port,
      allowHalfOpen: true,
      socket: CONNECT_HANDLERS,
    }).catch((error) => {
      throw connectError(error);
    }),
    options.timeoutMs,
    (late) => late.terminate(),
  );
  return socket.data ?? (socket.data = new BunRelaySocket(socket));
}

function serveHttp(
  address: SocketAddress,
  handler: (request: Request) => Promise<Response>,
): Promise<Listener> {
  const server = Bun.serve({ hostname: address.hostname, port: address.port, fetch: handler });
  return Promise.resolve({
    address: { hostname: server.hostname, port: server.port },
    close: async () => {
      await server.stop(true);
    },
  });
}

export const bunAdapter: RuntimeAdapter = { name: "bun", listen, connect, serveHttp };
