/**
 * Deno adapter: `Deno.listen` / `Deno.connect` sockets behind the core's RelaySocket contract.
 * Reads use a manual loop (RUNTIME-NOTES: half the CPU of `pipeTo`) into a reused buffer that is small
 * while the socket idles and grows from a shared pool while reads fill it (read_buffers.ts); writes are
 * queued views drained by one writer loop, whose completion is the `drain` event.
 */
import type { Listener, ListenOptions, RelaySocket, RuntimeAdapter, SocketAddress, SocketEvents } from "../core/socket.ts";
import { connectError } from "./connect_error.ts";
import { ReadBuffers } from "./read_buffers.ts";
import { withTimeout } from "./with_timeout.ts";

class DenoSocket implements RelaySocket {
  readonly remoteAddress: SocketAddress;
  readonly #conn: Deno.TcpConn;
  readonly #buffers = new ReadBuffers();
  #events: SocketEvents | undefined;
  #paused = false;
  #wakeReader: (() => void) | undefined;
  readonly #queue: Uint8Array[] = [];
  #pendingBytes = 0;
  #writing = false;
  #ending = false;
  #closed = false;
  #reading = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    const remote = conn.remoteAddr;
    this.remoteAddress = { hostname: remote.hostname, port: remote.port };
    try {
      conn.setNoDelay(true);
      conn.setKeepAlive(true);
    } catch {
      // The peer may already be gone; the read loop will report it.
    }
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Bytes of read buffer this socket holds now (tests: an idle socket holds only a small one). */
  get readBufferBytes(): number {
    return this.#buffers.heldBytes;
  }

  listen(events: SocketEvents): void {
    this.#events = events;
    if (this.#reading) return; // a new set of handlers; the one read loop goes on
    this.#reading = true;
    void this.#readLoop();
  }

  write(bytes: Uint8Array): boolean {
    if (this.#closed || this.#ending) return true;
    if (bytes.length === 0) return this.#queue.length === 0;
    this.#queue.push(bytes);
    this.#pendingBytes += bytes.length;
    if (!this.#writing) void this.#writeLoop();
    return false;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.();
  }

  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    if (!this.#writing) this.#finish();
  }

  destroy(): void {
    this.#finish();
  }

  async #readLoop(): Promise<void> {
    let failure: Error | undefined;
    let n = 0;
    try {
      while (!this.#closed) {
        if (this.#paused) {
          await new Promise<void>((wake) => this.#wakeReader = wake);
          continue;
        }
        // Not paused: the receiver is done with the last chunk, so its buffer may be reused or pooled.
        const buffer = this.#buffers.next(n);
        const read = await this.#conn.read(buffer);
        if (read === null) break;
        n = read;
        this.#events?.data(buffer.subarray(0, n));
      }
    } catch (error) {
      if (!this.#closed) failure = error as Error;
    }
    this.#buffers.drop();
    if (failure) this.#finish(failure);
    else this.end();
  }

  async #writeLoop(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const head = this.#queue[0]!;
        const n = await this.#conn.write(head);
        this.#pendingBytes -= n;
        if (n < head.length) this.#queue[0] = head.subarray(n);
        else this.#queue.shift();
      }
    } catch (error) {
      this.#writing = false;
      this.#finish(error as Error);
      return;
    }
    this.#writing = false;
    if (this.#closed) return;
    if (this.#ending) this.#finish();
    else this.#events?.drain();
  }

  #finish(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#pendingBytes = 0;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
    this.resume();
    this.#events?.close(error);
  }
}

function listen(
  address: SocketAddress,
  accept: (socket: RelaySocket) => void,
  options: ListenOptions = {},
): Promise<Listener> {
  // reusePort needs `"unstable": ["net"]` in deno.json (or --unstable-net), which this project sets.
  const listener = Deno.listen({
    hostname: address.hostname,
    port: address.port,
    transport: "tcp",
    ...(options.reusePort ? { reusePort: true } : {}),
  });
  let closed = false;
  void (async () => {
    while (!closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        if (closed) return;
        await new Promise((resolve) => setTimeout(resolve, 50)); // EMFILE and friends: back off, keep serving
        continue;
      }
      accept(new DenoSocket(conn));
    }
  })();
  const bound = listener.addr;
  return Promise.resolve({
    address: { hostname: bound.hostname, port: bound.port },
    close() {
      closed = true;
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      return Promise.resolve();
    },
  });
}

async function connect(address: SocketAddress, options: { timeoutMs: number }): Promise<RelaySocket> {
  const conn = await withTimeout(
    Deno.connect({ hostname: address.hostname, port: address.port, transport: "tcp" }).catch((error) => {
      throw connectError(error);
    }),
    options.timeoutMs,
    (late) => late.close(),
  );
  return new DenoSocket(conn);
}

function serveHttp(address: SocketAddress, handler: (request: Request) => Promise<Response>): Promise<Listener> {
  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: address.hostname,
        port: address.port,
        onListen: (bound) => {
          const { hostname, port } = bound as Deno.NetAddr;
          resolve({ address: { hostname, port }, close: () => server.shutdown() });
        },
      }, handler);
    } catch (error) {
      reject(error);
    }
  });
}

export const denoAdapter: RuntimeAdapter = { name: "deno", listen, connect, serveHttp };
