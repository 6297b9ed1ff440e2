/** Opens TLS connections to a PostgreSQL-speaking port the ways clients do: after SSLRequest, or direct. */
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { sslRequest } from "./frontend_frames.ts";

export interface TlsClientOptions {
  ca: string;
  servername?: string;
  /** ALPN protocols to offer; PostgreSQL direct TLS needs ["postgresql"]. */
  alpn?: string[];
}

/** Plain TCP, SSLRequest, expect "S", then the TLS handshake. */
export async function tlsAfterSslRequest(port: number, options: TlsClientOptions): Promise<TLSSocket> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connectTcp(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
  const answer: string = await new Promise((resolve, reject) => {
    socket.once("data", (chunk: Uint8Array) => resolve(String.fromCharCode(chunk[0]!)));
    socket.once("error", reject);
    socket.write(sslRequest());
  });
  if (answer !== "S") throw new Error(`expected S in answer to SSLRequest, got ${answer}`);
  return handshake({ socket, ...options });
}

/** Direct TLS: the ClientHello is the first thing on the connection. */
export function directTls(port: number, options: TlsClientOptions): Promise<TLSSocket> {
  return handshake({ host: "127.0.0.1", port, ...options });
}

function handshake(options: TlsClientOptions & { socket?: Socket; host?: string; port?: number }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = connectTls({
      ...(options.socket ? { socket: options.socket } : { host: options.host!, port: options.port! }),
      ca: options.ca,
      servername: options.servername ?? "localhost",
      ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
    }, () => resolve(secure));
    secure.once("error", reject);
  });
}

/** Everything the peer sends until it closes (or `until` says stop). */
export function readAll(socket: TLSSocket, until?: (bytes: Uint8Array) => boolean, timeoutMs = 5000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    const done = () => {
      clearTimeout(timer);
      resolve(new Uint8Array(Buffer.concat(chunks)));
    };
    const timer = setTimeout(() => reject(new Error("timed out reading from the TLS socket")), timeoutMs);
    socket.on("data", (chunk: Uint8Array) => {
      chunks.push(chunk);
      if (until?.(new Uint8Array(Buffer.concat(chunks)))) done();
    });
    socket.once("end", done);
    socket.once("close", done);
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
