/**
 * Bun adapter: `Bun.listen` / `Bun.connect` sockets behind the core's RelaySocket contract.
 * Bun's `write` takes what the kernel accepts and returns the count; the unwritten tail is queued as a
 * view (Bun hands each `data` event a fresh buffer, so the view stays valid) and flushed on `drain`.
 */
import type { Listener, ListenOptions, RelaySocket, RuntimeAdapter, SocketAddress, SocketEvents } from "../core/socket.ts";
import { connectError } from "./connect_error.ts";
import { withTimeout } from "./with_timeout.ts";

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
  serve(options: { hostname: string; port: number; fetch: (request: Request) => Promise<Response> }): BunServer;
  listen(options: { hostname: string; port: number; reusePort?: boolean; socket: BunSocketHandlers }): BunListener;
  connect(options: { hostname: string; port: number; socket: BunSocketHandlers }): Promise<BunSocket>;
};

class BunRelaySocket implements RelaySocket {
  readonly remoteAddress: SocketAddress;
  readonly #socket: BunSocket;
  #events: SocketEvents | undefined;
  /** Chunks that arrived before `listen` (created only if any do). */
  #early: Uint8Array[] | undefined;
  readonly #queue: Uint8Array[] = [];
  #pendingBytes = 0;
  #paused = false;
  #ending = false;
  #closed = false;

  constructor(socket: BunSocket) {
    this.#socket = socket;
    this.remoteAddress = { hostname: socket.remoteAddress, port: socket.remotePort ?? 0 };
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Bytes of read buffer this socket holds: none (Bun hands each `data` event a buffer of its own). */
  get readBufferBytes(): number {
    return 0;
  }

  listen(events: SocketEvents): void {
    this.#events = events;
    const early = this.#early;
    this.#early = undefined;
    if (early) for (const chunk of early) events.data(chunk);
  }

  write(bytes: Uint8Array): boolean {
    if (this.#closed || this.#ending) return true;
    if (this.#queue.length > 0) {
      this.#enqueue(bytes);
      return false;
    }
    const written = this.#socket.write(bytes);
    if (written >= bytes.length) return true;
    this.#enqueue(written > 0 ? bytes.subarray(written) : bytes);
    return false;
  }

  pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#socket.pause();
  }

  resume(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    this.#socket.resume();
  }

  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    if (this.#queue.length === 0) this.#socket.end();
  }

  destroy(): void {
    if (this.#closed) return;
    this.#socket.terminate();
    this.onClose();
  }

  onData(chunk: Uint8Array): void {
    if (this.#events) this.#events.data(chunk);
    else (this.#early ??= []).push(chunk);
  }

  onDrain(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const written = this.#socket.write(head);
      if (written < 0) return;
      this.#pendingBytes -= Math.max(written, 0);
      if (written < head.length) {
        this.#queue[0] = head.subarray(written);
        return;
      }
      this.#queue.shift();
    }
    if (this.#ending) this.#socket.end();
    else this.#events?.drain();
  }

  onClose(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#pendingBytes = 0;
    this.#events?.close(error);
  }

  #enqueue(bytes: Uint8Array): void {
    this.#queue.push(bytes);
    this.#pendingBytes += bytes.length;
  }
}

const handlers = (accept?: (socket: RelaySocket) => void): BunSocketHandlers => ({
  open(socket) {
    socket.data = new BunRelaySocket(socket);
    accept?.(socket.data);
  },
  data: (socket, chunk) => socket.data?.onData(chunk),
  drain: (socket) => socket.data?.onDrain(),
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
    Bun.connect({ hostname: address.hostname, port: address.port, socket: CONNECT_HANDLERS }).catch((error) => {
      throw connectError(error);
    }),
    options.timeoutMs,
    (late) => late.terminate(),
  );
  return socket.data ?? (socket.data = new BunRelaySocket(socket));
}

function serveHttp(address: SocketAddress, handler: (request: Request) => Promise<Response>): Promise<Listener> {
  const server = Bun.serve({ hostname: address.hostname, port: address.port, fetch: handler });
  return Promise.resolve({
    address: { hostname: server.hostname, port: server.port },
    close: async () => {
      await server.stop(true);
    },
  });
}

export const bunAdapter: RuntimeAdapter = { name: "bun", listen, connect, serveHttp };
