/**
 * node:net / node:tls adapter, used on both runtimes whenever a TLS mode is configured: Deno has no
 * server-side TLS upgrade after SSLRequest, and node:tls upgrades an accepted socket in Deno and Bun alike
 * (RUNTIME-NOTES). Both legs of a session then use this adapter, because node's `write()` keeps a
 * reference to the chunk after returning, which is only safe for chunks that are not reused: node hands
 * each `data` event a fresh Buffer. Writes go through the shared write queue, events through the shared
 * event gate (held before `listen` and while paused; handed back to the raw socket when TLS takes over).
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
import { EventGate } from "./event_gate.ts";
import { withTimeout } from "./with_timeout.ts";
import { SENDING, WriteQueue } from "./write_queue.ts";

class NodeRelaySocket implements RelaySocket {
  readonly remoteAddress: SocketAddress;
  readonly tls: TlsInfo | undefined;
  readonly #socket: net.Socket;
  readonly #gate = new EventGate();
  readonly #queue: NodeWriteQueue;
  /** end() or destroy() was called here: what the receiver has not taken yet is of no use any more. */
  #endedHere = false;
  #detached = false;

  constructor(socket: net.Socket, tlsInfo?: TlsInfo) {
    this.#socket = socket;
    this.#queue = new NodeWriteQueue(socket, this.#gate);
    this.tls = tlsInfo;
    this.remoteAddress = { hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
    // The peer ending its side ends ours only once what is queued went out (see #onEnd).
    socket.allowHalfOpen = true;
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    socket.on("data", this.#onData);
    socket.on("drain", this.#onDrain);
    socket.on("end", this.#onEnd);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  get pendingBytes(): number {
    if (this.#gate.closed || this.#socket.destroyed) return 0;
    return this.#socket.writableLength + this.#queue.waitingBytes;
  }

  listen(events: SocketEvents): void {
    this.#gate.listen(events);
  }

  write(bytes: Uint8Array): boolean {
    return this.#queue.write(bytes);
  }

  pause(): void {
    if (this.#gate.pause()) this.#socket.pause();
  }

  resume(): void {
    if (this.#gate.resume()) this.#socket.resume();
  }

  end(): void {
    this.#endedHere = true;
    this.#queue.end();
  }

  destroy(): void {
    this.#endedHere = true;
    this.#gate.discard();
    this.#queue.close();
    this.#socket.destroy();
  }

  upgradeTls(options: TlsUpgrade): Promise<RelaySocket> {
    this.#detach();
    if (options.role === "client") return startClientTls(this.#socket, options.client);
    // Bytes already taken from the socket go back in front of the stream, in order: the replayed ones
    // (direct TLS's ClientHello), then any the receiver had not taken yet.
    const held = this.#gate.takeHeld();
    if (held) { for (let i = held.length - 1; i >= 0; i--) this.#socket.unshift(held[i]!); }
    if (options.replay) this.#socket.unshift(options.replay);
    return acceptTls(this.#socket, options.server);
  }

  /** Hands the raw socket over to TLS: this wrapper stops reporting its events. */
  #detach(): void {
    this.#detached = true;
    this.#queue.close();
    this.#socket.off("data", this.#onData);
    this.#socket.off("drain", this.#onDrain);
    this.#socket.off("end", this.#onEnd);
    this.#socket.off("error", this.#onError);
    this.#socket.off("close", this.#onClose);
  }

  #onData = (chunk: Uint8Array) => this.#gate.data(chunk);
  #onDrain = () => this.#queue.sent();
  /** The peer ended its side: send what is queued, then end ours. */
  #onEnd = () => this.#queue.end();
  #onError = (error: Error) => this.#closeWith(error);
  #onClose = () => this.#closeWith(undefined);

  #closeWith(error: Error | undefined): void {
    if (this.#detached) return;
    this.#queue.close();
    if (this.#endedHere) this.#gate.discard();
    this.#gate.close(error);
  }
}

/**
 * The shared write queue on a node socket. Node takes every chunk into its own buffer: below the
 * high-water mark `write` returns true and the chunk counts as taken (node keeps a reference, which is
 * safe because node's `data` chunks are never reused); above it the chunk is node's until `drain`.
 */
class NodeWriteQueue extends WriteQueue {
  readonly #socket: net.Socket;
  readonly #gate: EventGate;

  constructor(socket: net.Socket, gate: EventGate) {
    super();
    this.#socket = socket;
    this.#gate = gate;
  }

  protected send(bytes: Uint8Array): number {
    return this.#socket.write(bytes) ? bytes.length : SENDING;
  }

  protected onDrain(): void {
    this.#gate.drain();
  }

  protected onEnd(): void {
    this.#socket.end();
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
      secure.off("end", closed);
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
    // Sockets allow half-open connections, so a client's FIN no longer closes the TLS socket by itself.
    secure.once("end", closed);
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

function listen(
  address: SocketAddress,
  accept: (socket: RelaySocket) => void,
  options: ListenOptions = {},
): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(
      { noDelay: true, pauseOnConnect: false, allowHalfOpen: true },
      (socket) => accept(new NodeRelaySocket(socket)),
    );
    server.once("error", reject);
    server.listen(
      {
        host: address.hostname,
        port: address.port,
        reusePort: options.reusePort === true,
      } as net.ListenOptions,
      () => {
        server.off("error", reject);
        const bound = server.address() as net.AddressInfo;
        resolve({
          address: { hostname: bound.address, port: bound.port },
          close: () => new Promise<void>((done) => server.close(() => done())),
        });
      },
    );
  });
}

function connect(address: SocketAddress, options: { timeoutMs: number }): Promise<RelaySocket> {
  const attempt = new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host: address.hostname, port: address.port, allowHalfOpen: true });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", (error) => reject(connectError(error)));
  });
  return withTimeout(attempt, options.timeoutMs, (late) => late.destroy()).then((socket) =>
    new NodeRelaySocket(socket)
  );
}

export const nodeAdapter: RuntimeAdapter = {
  name: "node",
  listen,
  connect,
  // HTTP stays on the runtime's native server, which serves fetch-style handlers.
  serveHttp: (address, handler) => adapterFor().serveHttp(address, handler),
};
