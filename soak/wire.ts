/** Small wire-level helpers the soak's raw clients share (TCP, TLS after SSLRequest, login, COPY frames). */
import { connect as netConnect, Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { errorFields } from "../tests/support/backend_frames.ts";
import { sslRequest } from "../tests/support/frontend_frames.ts";
import { RawClient } from "../tests/support/raw_client.ts";
import type { LoadContext, Scope } from "./load_loop.ts";
import { HOST } from "./settings.ts";

/** A TCP connection to pgrelay, recorded under the scope's label. */
export function connectTcp(ctx: LoadContext, scope: Scope): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = scope.track(netConnect({ host: HOST, port: ctx.port }));
    socket.setNoDelay(true);
    socket.once("connect", () => {
      if (socket.localPort !== undefined) ctx.ports.record(socket.localPort, scope.label);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/**
 * An unconnected socket for a client library that connects it itself (npm pg's `stream`), recorded under
 * the scope's label once connected.
 */
export function labelledSocket(ctx: LoadContext, scope: Scope): Socket {
  const socket = scope.track(new Socket());
  socket.once("connect", () => {
    if (socket.localPort !== undefined) ctx.ports.record(socket.localPort, scope.label);
  });
  return socket;
}

/** The first `count` bytes the peer sends (rejects on close before that). */
export function readExactly(socket: Socket, count: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let have = 0;
    const onData = (chunk: Uint8Array): void => {
      chunks.push(chunk);
      have += chunk.length;
      if (have >= count) {
        done();
        const all = new Uint8Array(Buffer.concat(chunks));
        if (all.length > count) socket.unshift(Buffer.from(all.subarray(count)));
        resolve(all.subarray(0, count));
      }
    };
    const onClose = (): void => {
      done();
      reject(new Error(`connection closed after ${have} of ${count} bytes`));
    };
    const done = (): void => {
      socket.off("data", onData);
      socket.off("close", onClose);
    };
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}

/** SSLRequest, expect 'S', then the TLS handshake against the test CA. */
export async function startTls(ctx: LoadContext, socket: Socket, scope: Scope): Promise<TLSSocket> {
  socket.write(sslRequest());
  const answer = await readExactly(socket, 1);
  if (answer[0] !== 0x53) throw new Error(`SSLRequest answered ${JSON.stringify(String.fromCharCode(answer[0] ?? 0))}, not S`);
  return new Promise((resolve, reject) => {
    const secure = scope.track(tlsConnect({ socket, ca: ctx.pki.ca.certPem, servername: "localhost" }, () => resolve(secure)));
    secure.once("error", reject);
    secure.once("close", () => reject(new Error("connection closed during the TLS handshake")));
  });
}

export type LoginAs = "trust" | "scram";

export interface Session {
  client: RawClient;
  socket: Socket;
  /** BackendKeyData: the process id and secret key pgrelay handed out (for CancelRequest). */
  key: { pid: number; secret: number } | undefined;
}

/** Plain TCP (or TLS), StartupMessage and authentication as one of the test roles, up to ReadyForQuery. */
export async function openSession(
  ctx: LoadContext,
  scope: Scope,
  opts: { tls?: boolean; as?: LoginAs; database?: string } = {},
): Promise<Session> {
  let socket: Socket = await connectTcp(ctx, scope);
  if (opts.tls === true) socket = await startTls(ctx, socket, scope);
  const client = RawClient.over(socket);
  const credentials = opts.as === "scram" ? ctx.users.scram : ctx.users.trust;
  const appName = `soak ${ctx.label} ${scope.label}`.slice(0, 63);
  client.startup({ user: credentials.user, database: opts.database ?? "postgres", application_name: appName });
  const messages = await client.authenticate(credentials.password);
  const k = messages.find((m) => m.type === "K");
  const view = k === undefined ? undefined : new DataView(k.body.buffer, k.body.byteOffset, k.body.byteLength);
  const key = view === undefined || view.byteLength < 8 ? undefined : { pid: view.getInt32(0), secret: view.getInt32(4) };
  return { client, socket, key };
}

/** Runs one simple query; throws on an ErrorResponse; returns the messages through ReadyForQuery. */
export async function simpleQuery(client: RawClient, sql: string, timeoutMs = 20_000): Promise<{ type: string; body: Uint8Array }[]> {
  client.query(sql);
  const messages = await client.readUntilReady(timeoutMs);
  const error = messages.find((m) => m.type === "E");
  if (error !== undefined) {
    const f = errorFields(error.body);
    throw new Error(`${f["S"]} ${f["C"]}: ${f["M"]} (query ${JSON.stringify(sql.slice(0, 80))})`);
  }
  return messages;
}

/** A frontend message: type byte, int32 length, payload. */
export function frame(type: string, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + payload.length);
  out.set(payload, 5);
  return out;
}

/** Waits until the peer closes the connection; false if it is still open after `ms`. */
export function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), ms);
    const onEnd = (): void => finish(true);
    function finish(closed: boolean): void {
      clearTimeout(timer);
      socket.off("end", onEnd);
      socket.off("close", onEnd);
      resolve(closed);
    }
    socket.once("end", onEnd);
    socket.once("close", onEnd);
    socket.resume(); // read (and drop) whatever arrives so 'end' can fire
  });
}

export type VanishHow = "rst" | "fin";

/** Drops the connection without a goodbye: a reset (RST, where the runtime can send one) or destroy (FIN). */
export function vanish(socket: Socket, how: VanishHow): void {
  const reset = (socket as Socket & { resetAndDestroy?: () => void }).resetAndDestroy;
  if (how === "rst" && typeof reset === "function") {
    try {
      reset.call(socket);
      return;
    } catch {
      // fall through to destroy
    }
  }
  socket.destroy();
}
