/**
 * node:net / node:tls adapter, used on both runtimes whenever a TLS mode is configured: Deno has no
 * server-side TLS upgrade after SSLRequest, and node:tls upgrades an accepted socket in Deno and Bun alike
 * (RUNTIME-NOTES). Both legs of a session then use this adapter, because node's `write()` keeps a
 * reference to the chunk after returning, which is only safe for chunks that are not reused: node hands
 * each `data` event a fresh Buffer.
 */
import net from "node:net";
import tls from "node:tls";
import type {
  ClientTlsOptions,
  Listener,
  ListenOptions,
  RelaySocket,
  RuntimeAdapter,
  ServerTlsOptions,
  SocketAddress,
  SocketEvents,
  TlsInfo,
  TlsUpgrade,
} from "../core/socket.ts";
import { TlsPeerClosedError } from "../core/socket.ts";
import { adapterFor } from "./runtime.ts";
import { connectError } from "./connect_error.ts";
import { withTimeout } from "./with_timeout.ts";

class NodeRelaySocket implements RelaySocket {
  readonly remoteAddress: SocketAddress;
  readonly tls: TlsInfo | undefined;
  readonly #socket: net.Socket;
  #events: SocketEvents | undefined;
  #early: Uint8Array[] = [];
  #closed = false;
  #detached = false;

  constructor(socket: net.Socket, tlsInfo?: TlsInfo) {
    this.#socket = socket;
    this.tls = tlsInfo;
    this.remoteAddress = { hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    socket.on("data", this.#onData);
    socket.on("drain", this.#onDrain);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  get pendingBytes(): number {
    return this.#socket.writableLength;
  }

  listen(events: SocketEvents): void {
    this.#events = events;
    const early = this.#early;
    this.#early = [];
    for (const chunk of early) events.data(chunk);
    if (this.#closed) events.close();
  }

  write(bytes: Uint8Array): boolean {
    if (this.#closed || this.#socket.writableEnded) return true;
    return this.#socket.write(bytes);
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  end(): void {
    if (!this.#closed) this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  upgradeTls(options: TlsUpgrade): Promise<RelaySocket> {
    this.#detach();
    if (options.role === "client") return startClientTls(this.#socket, options.client);
    // Bytes already taken from the socket (direct TLS's ClientHello) go back in front of the stream.
    if (options.replay) this.#socket.unshift(options.replay);
    return acceptTls(this.#socket, options.server);
  }

  /** Hands the raw socket over to TLS: this wrapper stops reporting its events. */
  #detach(): void {
    this.#detached = true;
    this.#socket.off("data", this.#onData);
    this.#socket.off("drain", this.#onDrain);
    this.#socket.off("error", this.#onError);
    this.#socket.off("close", this.#onClose);
  }

  #onData = (chunk: Uint8Array) => {
    if (this.#events) this.#events.data(chunk);
    else this.#early.push(chunk);
  };
  #onDrain = () => this.#events?.drain();
  #onError = (error: Error) => {
    this.#closeWith(error);
  };
  #onClose = () => this.#closeWith(undefined);

  #closeWith(error: Error | undefined): void {
    if (this.#closed || this.#detached) return;
    this.#closed = true;
    this.#events?.close(error);
  }
}

function tlsInfo(socket: tls.TLSSocket): TlsInfo {
  const alpn = socket.alpnProtocol;
  return {
    protocol: socket.getProtocol() ?? "unknown",
    cipher: socket.getCipher()?.name ?? "unknown",
    alpn: typeof alpn === "string" ? alpn : undefined,
    // On the server side, the SNI name the client sent (false or undefined without one).
    serverName: typeof (socket as { servername?: unknown }).servername === "string"
      ? (socket as { servername?: string }).servername
      : undefined,
  };
}

/**
 * The server side of a TLS handshake on an accepted socket. Settles exactly once: with the secure socket,
 * or with an error when the handshake fails or the client closes or resets the connection before it ends
 * (Deno's node:tls reports neither as an error on the TLS socket, so the raw socket's end is watched too).
 */
function acceptTls(raw: net.Socket, options: ServerTlsOptions): Promise<RelaySocket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(raw, {
      isServer: true,
      key: Buffer.from(options.key),
      cert: Buffer.from(options.cert),
      ...(options.alpnProtocols ? { ALPNProtocols: options.alpnProtocols } : {}),
    });
    let settled = false;
    const cleanUp = () => {
      settled = true;
      secure.off("error", fail);
      secure.off("close", closed);
      raw.off("error", fail);
      raw.off("end", closed);
      raw.off("close", closed);
    };
    const fail = (error: Error) => {
      if (settled) return;
      cleanUp();
      secure.destroy();
      raw.destroy();
      reject(new Error(`TLS handshake with the client failed: ${error.message}`));
    };
    const closed = () => fail(new Error("the client closed the connection during the handshake"));
    secure.on("error", fail);
    secure.once("close", closed);
    raw.on("error", fail);
    raw.once("end", closed);
    raw.once("close", closed);
    secure.once("secure", () => {
      if (settled) return;
      cleanUp();
      resolve(new NodeRelaySocket(secure, tlsInfo(secure)));
    });
    if (raw.destroyed || raw.readableEnded) closed();
  });
}

function startClientTls(raw: net.Socket, options: ClientTlsOptions): Promise<RelaySocket> {
  return new Promise((resolve, reject) => {
    const host = options.serverName;
    const isIp = net.isIP(host) !== 0;
    const secure = tls.connect({
      socket: raw,
      ...(isIp ? {} : { servername: host }),
      ...(options.ca ? { ca: Buffer.from(options.ca) } : {}),
      ...(options.alpnProtocols ? { ALPNProtocols: options.alpnProtocols } : {}),
      rejectUnauthorized: options.verify !== "none",
      checkServerIdentity: options.verify === "full"
        ? (_name: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(host, cert)
        : () => undefined,
    });
    const fail = (error: Error & { code?: string }) => {
      secure.destroy();
      // Deno and Bun both report a peer that closes or resets mid-handshake as ECONNRESET.
      const Failure = error.code === "ECONNRESET" ? TlsPeerClosedError : Error;
      reject(new Failure(`TLS handshake failed: ${error.message}`));
    };
    secure.once("error", fail);
    secure.once("secureConnect", () => {
      secure.off("error", fail);
      resolve(new NodeRelaySocket(secure, tlsInfo(secure)));
    });
  });
}

function listen(address: SocketAddress, accept: (socket: RelaySocket) => void, options: ListenOptions = {}): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => accept(new NodeRelaySocket(socket)));
    server.once("error", reject);
    server.listen({ host: address.hostname, port: address.port, reusePort: options.reusePort === true } as net.ListenOptions, () => {
      server.off("error", reject);
      const bound = server.address() as net.AddressInfo;
      resolve({
        address: { hostname: bound.address, port: bound.port },
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

function connect(address: SocketAddress, options: { timeoutMs: number }): Promise<RelaySocket> {
  const attempt = new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host: address.hostname, port: address.port });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", (error) => reject(connectError(error)));
  });
  return withTimeout(attempt, options.timeoutMs, (late) => late.destroy()).then((socket) => new NodeRelaySocket(socket));
}

export const nodeAdapter: RuntimeAdapter = {
  name: "node",
  listen,
  connect,
  // HTTP stays on the runtime's native server, which serves fetch-style handlers.
  serveHttp: (address, handler) => adapterFor().serveHttp(address, handler),
};
