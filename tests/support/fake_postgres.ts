/**
 * A fake PostgreSQL server for tests of what pgrelay believes upstream: a node:net listener on port 0 that
 * speaks just enough of the protocol (StartupMessage in, Authentication requests out, frames in, a scripted
 * answer) for a test to skip, reorder or forge steps of the login.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { createServer, type Server, type Socket } from "node:net";
import { ByteQueue } from "./byte_queue.ts";
import { concatBytes } from "./bytes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One frontend message (after the StartupMessage): its type letter and body. */
export interface FrontendMessage {
  type: string;
  body: Uint8Array;
}

/** A backend frame: type byte, int32 length, body. */
export function backendFrame(type: string, body: Uint8Array = new Uint8Array()): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

/** An Authentication ('R') message: int32 code, then `data`. */
export function authentication(code: number, data: Uint8Array = new Uint8Array()): Uint8Array {
  const body = new Uint8Array(4 + data.length);
  new DataView(body.buffer).setInt32(0, code);
  body.set(data, 4);
  return backendFrame("R", body);
}

/** AuthenticationSASL offering `mechanisms`. */
export function authenticationSasl(mechanisms: readonly string[]): Uint8Array {
  return authentication(10, encoder.encode(mechanisms.map((m) => `${m}\0`).join("") + "\0"));
}

/** What a server sends after AuthenticationOk: a ParameterStatus, BackendKeyData and ReadyForQuery 'I'. */
export function afterAuthenticationOk(): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setInt32(0, 4242);
  new DataView(key.buffer).setInt32(4, 99);
  return concat(
    authentication(0),
    backendFrame("S", encoder.encode("server_version\u000017.0\u0000")),
    backendFrame("K", key),
    backendFrame("Z", encoder.encode("I")),
  );
}

/** A one-column DataRow with a text value. */
export function dataRow(value: string): Uint8Array {
  const bytes = encoder.encode(value);
  const body = new Uint8Array(6 + bytes.length);
  const view = new DataView(body.buffer);
  view.setInt16(0, 1);
  view.setInt32(2, bytes.length);
  body.set(bytes, 6);
  return backendFrame("D", body);
}

export const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts);

/** The server side of one accepted connection. */
export class FakeConnection {
  readonly socket: Socket;
  /** The StartupMessage's parameters. */
  readonly startup: Promise<Record<string, string>>;
  /** Every frontend message received so far, in order. */
  readonly received: FrontendMessage[] = [];
  #queue = new ByteQueue();
  #gotStartup = false;
  #startupResolve: (params: Record<string, string>) => void = () => {};
  #waiters: Array<() => void> = [];
  #closed = false;
  /** How many of `received` {@link next} has handed out. */
  #read = 0;

  constructor(socket: Socket) {
    this.socket = socket;
    this.startup = new Promise((resolve) => this.#startupResolve = resolve);
    socket.on("data", (chunk: Uint8Array) => {
      this.#queue.append(new Uint8Array(chunk));
      this.#parse();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
  }

  /** Sends raw bytes. */
  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** The next frontend message; rejects if the peer closes first or after `ms`. */
  async next(ms = 10_000): Promise<FrontendMessage> {
    const deadline = Date.now() + ms;
    let index = this.#read;
    while (this.received.length <= index) {
      if (this.#closed) throw new Error("the client closed the connection");
      if (Date.now() > deadline) throw new Error("timed out waiting for a frontend message");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      index = this.#read;
    }
    this.#read++;
    return this.received[index]!;
  }

  /** Waits until the peer closes (or `ms` passes); true when closed. */
  async closed(ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.#closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return this.#closed;
  }

  end(): void {
    this.socket.end();
  }

  #parse(): void {
    for (;;) {
      const view = this.#queue.view();
      if (!this.#gotStartup) {
        if (view.length < 4) return;
        const length = new DataView(view.buffer, view.byteOffset, view.byteLength).getInt32(0);
        if (view.length < length) return;
        const packet = this.#queue.take(length);
        this.#gotStartup = true;
        const fields = decoder.decode(packet.subarray(8)).split("\0");
        const params: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length && fields[i] !== ""; i += 2) {
          params[fields[i]!] = fields[i + 1]!;
        }
        this.#startupResolve(params);
        continue;
      }
      if (view.length < 5) return;
      const length = new DataView(view.buffer, view.byteOffset, view.byteLength).getInt32(1);
      if (view.length < 1 + length) return;
      const frame = this.#queue.take(1 + length);
      this.received.push({ type: String.fromCharCode(frame[0]!), body: frame.subarray(5) });
      this.#wake();
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** A listener on 127.0.0.1, port 0, that hands every connection to `handle`. */
export async function startFakePostgres(
  handle: (connection: FakeConnection) => Promise<void>,
): Promise<{ port: number; connections: FakeConnection[]; close(): Promise<void> }> {
  const connections: FakeConnection[] = [];
  const server: Server = createServer((socket) => {
    const connection = new FakeConnection(socket);
    connections.push(connection);
    handle(connection).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("no listen address");
  return {
    port: address.port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const connection of connections) connection.socket.destroy();
        server.close(() => resolve());
      }),
  };
}
