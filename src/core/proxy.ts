/**
 * The accept loop: one Session per client socket, a registry of backend keys so a CancelRequest reaches
 * the upstream that holds the session, and shutdown.
 */
import type { ProxyError } from "../protocol/error_response.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";
import type { Logger } from "./logger.ts";
import type { RelaySettings } from "./relay_settings.ts";
import { formatAddress, Session, type SessionHost } from "./session.ts";
import type { SessionContext } from "./session_context.ts";
import type { Listener, RuntimeAdapter, SocketAddress } from "./socket.ts";

export interface ProxyOptions extends RelaySettings {
  listen: SocketAddress;
  logger: Logger;
}

export class Proxy {
  readonly #adapter: RuntimeAdapter;
  readonly #logger: Logger;
  readonly #sessions = new Set<Session>();
  readonly #idPrefix = Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, "0");
  #settings: RelaySettings;
  #listener: Listener | undefined;
  #nextId = 1;
  #host: SessionHost;

  private constructor(adapter: RuntimeAdapter, options: ProxyOptions) {
    this.#adapter = adapter;
    this.#logger = options.logger;
    this.#settings = settingsOf(options);
    this.#host = {
      connect: adapter.connect,
      logger: options.logger,
      cancelTarget: (pid, secret) => this.#cancelTarget(pid, secret),
      sessionEnded: (session) => this.#sessions.delete(session),
    };
  }

  /** Binds the listen address and starts accepting. */
  static async start(adapter: RuntimeAdapter, options: ProxyOptions): Promise<Proxy> {
    const proxy = new Proxy(adapter, options);
    proxy.#listener = await adapter.listen(options.listen, (socket) => proxy.#accept(socket));
    options.logger.log("info", "listening", {
      listen: formatAddress(proxy.address),
      upstream: formatAddress(options.upstream),
      runtime: adapter.name,
    });
    return proxy;
  }

  /** The bound address (the real port when started on port 0). */
  get address(): SocketAddress {
    if (!this.#listener) throw new Error("Proxy is not listening");
    return this.#listener.address;
  }

  /** The context of every live session. */
  get sessions(): SessionContext[] {
    return [...this.#sessions].map((session) => session.context);
  }

  /** Applies new relay settings to sessions that start from now on. */
  reconfigure(settings: RelaySettings): void {
    this.#settings = settingsOf(settings);
  }

  /** Stops accepting and ends every session with FATAL 57P01. */
  async close(): Promise<void> {
    await this.#listener?.close();
    const error: ProxyError = {
      severity: "FATAL",
      code: SQLSTATE.ADMIN_SHUTDOWN,
      message: "terminating connection because pgrelay is shutting down",
    };
    for (const session of this.#sessions) session.terminate(error);
  }

  #accept(socket: Parameters<Parameters<RuntimeAdapter["listen"]>[1]>[0]): void {
    const session = new Session(`${this.#idPrefix}-${this.#nextId++}`, socket, this.#settings, this.#host);
    this.#sessions.add(session);
    this.#logger.log("debug", "session_start", session.context.toJSON());
    session.start();
  }

  #cancelTarget(processId: number, secretKey: Uint8Array): SocketAddress | undefined {
    for (const session of this.#sessions) {
      const context = session.context;
      if (context.backendPid === processId && context.backendSecret && equalBytes(context.backendSecret, secretKey)) {
        return context.upstream;
      }
    }
    return undefined;
  }
}

function settingsOf(options: RelaySettings): RelaySettings {
  return {
    upstream: options.upstream,
    startupTimeoutMs: options.startupTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    maxMessageBytes: options.maxMessageBytes,
  };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
