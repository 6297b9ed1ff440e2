/**
 * Deno adapter: `Deno.listen` / `Deno.connect` sockets behind the core's RelaySocket contract.
 * Reads use a manual loop (RUNTIME-NOTES: half the CPU of `pipeTo`) into a reused buffer that is small
 * while the socket idles and grows from a shared pool while reads fill it (read_buffers.ts); reading starts
 * at `listen` and waits while the receiver is paused or a chunk is held (event_gate.ts), so the buffer is
 * never reused under a chunk still in use. Writes go through the shared write queue: `conn.write` holds
 * the view until its promise settles, one write at a time.
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
import { ReadBuffers } from "./read_buffers.ts";
import { withTimeout } from "./with_timeout.ts";
import { SENDING, WriteQueue } from "./write_queue.ts";

class DenoSocket implements RelaySocket {
  readonly remoteAddress: SocketAddress;
  readonly #conn: Deno.TcpConn;
  readonly #buffers = new ReadBuffers();
  readonly #gate = new EventGate();
  readonly #queue: WriteQueue;
  #wakeReader: (() => void) | undefined;
  #reading = false;
  #finished = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.#queue = new DenoWriteQueue(conn, this.#gate, this.#finish);
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
    return this.#queue.pendingBytes;
  }

  /** Bytes of read buffer this socket holds now (tests: an idle socket holds only a small one). */
  get readBufferBytes(): number {
    return this.#buffers.heldBytes;
  }

  listen(events: SocketEvents): void {
    this.#gate.listen(events);
    if (this.#reading || this.#finished) return; // a new set of handlers; the one read loop goes on
    this.#reading = true;
    void this.#readLoop();
  }

  write(bytes: Uint8Array): boolean {
    return this.#queue.write(bytes);
  }

  pause(): void {
    this.#gate.pause();
  }

  resume(): void {
    this.#gate.resume();
    if (!this.#gate.paused && !this.#gate.holding) this.#wake();
  }

  end(): void {
    this.#queue.end();
  }

  destroy(): void {
    this.#finish();
  }

  async #readLoop(): Promise<void> {
    const gate = this.#gate;
    let failure: Error | undefined;
    let n = 0;
    try {
      while (!this.#finished) {
        if (gate.paused || gate.holding) {
          await new Promise<void>((wake) => this.#wakeReader = wake);
          continue;
        }
        // Not paused and nothing held: the receiver is done with the last chunk, so its buffer may be reused.
        const buffer = this.#buffers.next(n);
        const read = await this.#conn.read(buffer);
        if (read === null) break;
        n = read;
        gate.data(buffer.subarray(0, n)); // held, not delivered, if the receiver paused during the read
      }
    } catch (error) {
      if (!this.#finished) failure = error as Error;
    }
    this.#buffers.drop();
    if (failure) this.#finish(failure);
    else this.#queue.end(); // the peer ended: send what is queued, then close
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.();
  }

  /** Closes the connection (end() finished, destroy, a failure, or the peer ended) and reports it once. */
  #finish = (error?: Error): void => {
    if (this.#finished) return;
    this.#finished = true;
    this.#queue.close();
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
    this.#gate.discard(); // the read loop reads only with nothing held; what is held now nobody will read
    this.#gate.close(error);
    this.#wake();
  };
}

/** The shared write queue on a Deno connection: one `conn.write` at a time, each holding its view. */
class DenoWriteQueue extends WriteQueue {
  readonly #conn: Deno.TcpConn;
  readonly #gate: EventGate;
  readonly #finish: (error?: Error) => void;

  constructor(conn: Deno.TcpConn, gate: EventGate, finish: (error?: Error) => void) {
    super();
    this.#conn = conn;
    this.#gate = gate;
    this.#finish = finish;
  }

  protected send(bytes: Uint8Array): number {
    this.#conn.write(bytes).then(this.#written, this.#failed);
    return SENDING;
  }

  protected onDrain(): void {
    this.#gate.drain();
  }

  protected onEnd(): void {
    this.#finish();
  }

  #written = (count: number) => this.sent(count);
  #failed = (error: unknown) => this.#finish(error instanceof Error ? error : new Error(String(error)));
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

function serveHttp(
  address: SocketAddress,
  handler: (request: Request) => Promise<Response>,
): Promise<Listener> {
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
