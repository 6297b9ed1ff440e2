/**
 * The accept loop: one Frontend per client socket, the registry of the cancel keys pgrelay issues to clients
 * (a CancelRequest reaches the server the key's client holds, or under `--workers` the worker that issued
 * it), and shutdown.
 */
import { ClientError } from "../protocol/client_error.ts";
import { encodeErrorResponse } from "../protocol/error_response.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";
import type { Logger } from "./logger.ts";
import { type MetricsSink, NO_METRICS } from "./metrics_sink.ts";
import type { RelaySettings } from "./relay_settings.ts";
import type { Admission, Auditor } from "./session_hooks.ts";
import { NO_CLIENT_TLS, NO_UPSTREAM_TLS } from "./tls_settings.ts";
import { formatAddress, Frontend, type FrontendHost } from "../frontend/frontend.ts";
import type { SessionContext } from "./session_context.ts";
import type { Listener, RelaySocket, RuntimeAdapter, SocketAddress } from "./socket.ts";
import type { StartupGate } from "./startup_gate.ts";
import { cancelRequest } from "../protocol/frontend_messages.ts";
import { CancelKeyRegistry, workerOfProcessId } from "../routing/cancel_keys.ts";
import type { CancelableServer, CancelRoute } from "./cancel_binding.ts";
import { type Router, singleUpstreamRouter } from "../routing/router.ts";
import { hostDown } from "./routing_errors.ts";
import { healthProbe } from "../backend/health_login.ts";
import type { UpstreamAuthMethod } from "../backend/upstream_auth.ts";
import type { HostChange, HostState } from "../routing/host_state.ts";
import { SessionPools } from "../pool/session_pools.ts";
import type { PoolMetricsSink, PoolRegistry } from "../pool/pool_registry.ts";
import type { ServerConnection } from "../backend/server_connection.ts";

export interface ProxyOptions extends RelaySettings {
  listen: SocketAddress;
  /** Share the listen port with other processes (SO_REUSEPORT), as `--workers` does. */
  reusePort?: boolean;
  logger: Logger;
  metrics?: MetricsSink;
  /** Policy and limits, asked once per session before it connects upstream. */
  admission?: Admission | undefined;
  /** The audit log's session observer. */
  auditor?: Auditor | undefined;
  /** Caps connections still in their startup phase, asked at accept before any byte is read. */
  startupGate?: StartupGate | undefined;
  /**
   * The first part of session ids (`PREFIX-N`): 6 hex digits, random unless given. Workers pass one that
   * ends in their number, so ids are unique across workers and name the worker that holds the session.
   */
  sessionIdPrefix?: string | undefined;
  /** This process's worker number under `--workers` (1 to 64), named in the cancel keys it issues; 0 alone. */
  workerId?: number | undefined;
  /**
   * `--workers`: every worker's loopback cancel listener by worker number. This worker listens on its own;
   * a CancelRequest with another worker's key is handed to that worker's.
   */
  cancelPeers?: ReadonlyMap<number, SocketAddress> | undefined;
  /** Where the pools count waits, logins and pins (the metrics' PoolMetrics). */
  poolMetrics?: PoolMetricsSink | undefined;
}

/** Live cancel keys per process at most: one per live session, far above any connection limit. */
const CANCEL_KEY_CAPACITY = 1 << 20;

/** A live session as the admin API lists it. */
export interface LiveSession {
  readonly context: SessionContext;
  /** Requests sent and not yet answered: a ready session with some is `active`. */
  readonly outstandingRequests: number;
}

/** A refused connection is closed at once; this long at most for its FATAL to go out first. */
const REFUSED_LINGER_MS = 1000;

export class Proxy {
  readonly #adapter: RuntimeAdapter;
  readonly #logger: Logger;
  readonly #sessions = new Set<Frontend>();
  readonly #startupGate: StartupGate | undefined;
  /** Sessions still in their startup phase and the release of their startup-limit slot. */
  readonly #starting = new Map<Frontend, () => void>();
  readonly #idPrefix: string;
  #settings: RelaySettings;
  #listener: Listener | undefined;
  #nextId = 1;
  #draining = false;
  #host: FrontendHost;
  readonly #cancelKeys: CancelKeyRegistry<CancelableServer>;
  readonly #cancelPeers: ReadonlyMap<number, SocketAddress> | undefined;
  #cancelListener: Listener | undefined;
  /** Connections of the worker cancel listener (each carries one CancelRequest from another worker). */
  readonly #peerCancels = new Set<Frontend>();
  /** The pools of pooled routes (empty while no route pools). */
  readonly #pools: SessionPools;

  private constructor(adapter: RuntimeAdapter, options: ProxyOptions) {
    this.#adapter = adapter;
    this.#logger = options.logger;
    this.#settings = settingsOf(options);
    this.#listenToRouter(this.#settings.router!);
    this.#startupGate = options.startupGate;
    this.#idPrefix = options.sessionIdPrefix ?? Math.floor(Math.random() * 0x1000000).toString(16).padStart(6, "0");
    this.#cancelKeys = new CancelKeyRegistry({
      workerId: options.workerId ?? 0,
      capacity: CANCEL_KEY_CAPACITY,
      keyOf: (server) => server.key,
    });
    this.#cancelPeers = options.cancelPeers;
    this.#pools = new SessionPools({
      router: () => this.#settings.router!,
      connect: adapter.connect,
      connectTimeoutMs: () => this.#settings.connectTimeoutMs,
      loginTimeoutMs: () => this.#settings.startupTimeoutMs,
      maxMessageBytes: () => this.#settings.maxMessageBytes,
      upstreamTls: () => this.#settings.upstreamEncryption,
      requireAuth: () => this.#settings.authentication?.mode === "scram" ? this.#settings.authentication.upstreamRequireAuth : undefined,
      maxServerConnections: options.maxServerConnections,
      metrics: options.metrics ?? NO_METRICS,
      poolMetrics: options.poolMetrics,
      logger: options.logger,
    });
    this.#host = {
      pools: this.#pools,
      connect: adapter.connect,
      logger: options.logger,
      metrics: options.metrics ?? NO_METRICS,
      admission: options.admission,
      auditor: options.auditor,
      cancelTarget: (pid, secret) => this.#cancelTarget(pid, secret, false),
      issueCancelKey: (server, secretLength) => this.#cancelKeys.issue(secretLength, server),
      startupEnded: (session) => this.#leaveStartup(session),
      sessionEnded: (session) => {
        this.#leaveStartup(session);
        this.#sessions.delete(session);
      },
    };
  }

  /** Binds the listen address and starts accepting. */
  static async start(adapter: RuntimeAdapter, options: ProxyOptions): Promise<Proxy> {
    const proxy = new Proxy(adapter, options);
    const ownCancel = options.cancelPeers?.get(options.workerId ?? 0);
    if (ownCancel) proxy.#cancelListener = await adapter.listen(ownCancel, (socket) => proxy.#acceptPeerCancel(socket));
    try {
      proxy.#listener = await adapter.listen(options.listen, (socket) => proxy.#accept(socket), {
        reusePort: options.reusePort === true,
      });
    } catch (error) {
      await proxy.#cancelListener?.close();
      throw error;
    }
    proxy.#startRouter(proxy.#settings.router!);
    options.logger.log("info", "listening", {
      listen: formatAddress(proxy.address),
      ...(proxy.#settings.router!.clusters.has("upstream") && proxy.#settings.router!.clusters.size === 1
        ? { upstream: formatAddress(options.upstream) }
        : { clusters: [...proxy.#settings.router!.clusters.keys()] }),
      runtime: adapter.name,
    });
    return proxy;
  }

  /** The bound address (the real port when started on port 0). */
  get address(): SocketAddress {
    if (!this.#listener) throw new Error("Proxy is not listening");
    return this.#listener.address;
  }

  /** Live cancel keys issued to clients (one per session past BackendKeyData). */
  get cancelKeys(): number {
    return this.#cancelKeys.size;
  }

  /** The context of every live session. */
  get sessions(): SessionContext[] {
    return [...this.#sessions].map((session) => session.context);
  }

  /** Sessions holding a startup-limit slot: accepted and not yet ready, passthrough or closed. */
  get starting(): number {
    return this.#starting.size;
  }

  /** Every live session with what the admin API shows beyond its context. */
  get liveSessions(): LiveSession[] {
    return [...this.#sessions].map((session) => ({ context: session.context, outstandingRequests: session.outstandingRequests }));
  }

  /**
   * Ends the session with this id from the admin API: the client gets `error` (FATAL 57P01) and the session
   * ends with reason `admin_terminated`. Returns its context, or undefined when no live session has the id.
   */
  terminate(id: string, error: ClientError): SessionContext | undefined {
    for (const session of this.#sessions) {
      if (session.context.id !== id || session.context.phase === "closed") continue;
      this.#logger.log("warn", "session_terminated", { ...session.context.toJSON(), by: "admin", sqlstate: error.code, message: error.message });
      session.terminate(error, "admin_terminated");
      return session.context;
    }
    return undefined;
  }

  /** Bytes queued in per-session write buffers. */
  get bufferedBytes(): number {
    let total = 0;
    for (const session of this.#sessions) total += session.bufferedBytes;
    return total;
  }

  /** True once drain() or close() has started. */
  get draining(): boolean {
    return this.#draining;
  }

  /** The upstream new sessions go to. */
  get upstream(): SocketAddress {
    return this.#settings.upstream;
  }

  /** Opens and closes a TCP connection to the upstream (the server logs nothing for one that sends no byte). */
  async probeUpstream(timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      const socket = await this.#adapter.connect(this.#settings.upstream, { timeoutMs });
      socket.listen({ data() {}, drain() {}, close() {} });
      socket.destroy();
      return { ok: true };
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
  }

  /**
   * Stops accepting, lets sessions finish for up to `timeoutMs`, then ends the rest with FATAL 57P01.
   * Resolves once every session is closed.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    await this.#listener?.close();
    this.#logger.log("info", "draining", { sessions: this.#sessions.size, timeout_ms: timeoutMs });
    const deadline = Date.now() + timeoutMs;
    while (this.#sessions.size > 0 && Date.now() < deadline) await sleep(Math.min(50, deadline - Date.now()));
    if (this.#sessions.size > 0) {
      this.#logger.log("warn", "drain_timeout", { sessions: this.#sessions.size });
      await this.close();
    }
    this.#settings.router!.stop();
    // Idle pooled server connections end with the last session (each is told Terminate by its close).
    this.#pools.registry.closeAll();
    // Open until the sessions are gone: other workers may still hand on cancels for them meanwhile.
    await this.#closeCancelListener();
  }

  /** The pools of pooled routes, for `GET /pools` and the pool gauges. */
  get pools(): PoolRegistry<ServerConnection> {
    return this.#pools.registry;
  }

  /** Applies new relay settings to sessions that start from now on. */
  reconfigure(settings: RelaySettings): void {
    const old = this.#settings.router!;
    this.#settings = settingsOf(settings);
    const router = this.#settings.router!;
    this.#listenToRouter(router);
    if (router !== old) {
      old.stop();
      if (this.#listener && !this.#draining) this.#startRouter(router);
    }
  }

  /** Starts the router's health checks, probing with this proxy's connector. */
  #startRouter(router: Router): void {
    const defaultTls = this.#settings.upstreamEncryption;
    router.start((routed, health) =>
      healthProbe(this.#adapter.connect, routed, health, {
        passwords: router.healthPasswords,
        defaultTls,
        requireAuth: router.healthRequireAuth as readonly UpstreamAuthMethod[] | undefined,
      })
    );
  }

  /** The router new sessions are routed by. */
  get router(): Router {
    return this.#settings.router!;
  }

  #listenToRouter(router: Router): void {
    router.listen({
      hostChanged: (cluster, host, change) => this.#hostChanged(cluster, host, change),
      checked: (cluster, host, seconds, ok) => this.#host.metrics.upstreamChecked?.(cluster, host, seconds, ok),
    });
  }

  /**
   * A host's health changed. One that health checks marked down takes its sessions with it: each gets
   * FATAL 08006, so none is left hanging on a server that stopped answering. (A refused connection alone
   * marks a host down too, but says nothing of the sessions already on it.)
   */
  #hostChanged(cluster: string, host: HostState, change: HostChange): void {
    this.#logger.log(change.up ? "info" : "warn", "upstream_host_changed", {
      cluster,
      host: host.address,
      up: change.up,
      role: change.role,
      was_up: change.wasUp,
      was_role: change.wasRole,
      error: host.error,
    });
    this.#host.metrics.upstreamChanged?.(cluster, host);
    if (!change.wasUp || change.up || host.downReason !== "check") return;
    // Its idle pooled connections go; clients between transactions get a server elsewhere at their next one.
    this.#pools.registry.drainHost(host.address);
    for (const session of this.#sessions) {
      if (session.server?.placement.host !== host || session.context.phase === "closed") continue;
      session.terminate(hostDown(session.context.id), "host_down");
    }
  }

  /**
   * Ends every live session for which `check` returns an error (a reloaded policy that now denies it):
   * the client gets that error (FATAL 57P01) and the session ends with reason `policy_revoked`.
   * Returns how many sessions were ended.
   */
  revoke(check: (context: SessionContext) => ClientError | undefined): number {
    let revoked = 0;
    for (const session of this.#sessions) {
      if (session.context.phase === "closed" || session.context.phase === "startup") continue;
      const error = check(session.context);
      if (!error) continue;
      revoked++;
      this.#logger.log("warn", "session_revoked", { ...session.context.toJSON(), sqlstate: error.code, message: error.message });
      session.terminate(error, "policy_revoked");
    }
    return revoked;
  }

  /** Stops accepting and ends every session with FATAL 57P01; resolves once they are closed (at most 2 s). */
  async close(): Promise<void> {
    this.#draining = true;
    this.#pools.registry.closeAll();
    this.#settings.router!.stop();
    await this.#listener?.close();
    const error = new ClientError({
      severity: "FATAL",
      code: SQLSTATE.ADMIN_SHUTDOWN,
      message: "terminating connection because pgrelay is shutting down",
    });
    for (const session of this.#sessions) session.terminate(error);
    const deadline = Date.now() + 2000;
    while (this.#sessions.size > 0 && Date.now() < deadline) await sleep(10);
    await this.#closeCancelListener();
  }

  #accept(socket: RelaySocket): void {
    const ticket = this.#startupGate?.enter(socket.remoteAddress.hostname);
    if (ticket && !ticket.allowed) {
      this.#refuse(socket, ticket.rule, ticket.error);
      return;
    }
    const session = new Frontend(`${this.#idPrefix}-${this.#nextId++}`, socket, this.#settings, this.#host);
    this.#sessions.add(session);
    if (ticket) this.#starting.set(session, ticket.release);
    this.#logger.log("debug", "session_start", session.context.toJSON());
    session.start();
  }

  /** Frees the session's startup-limit slot, once: it is ready, passthrough or closed. */
  #leaveStartup(session: Frontend): void {
    const release = this.#starting.get(session);
    if (!release) return;
    this.#starting.delete(session);
    release();
  }

  /**
   * A connection over a startup limit: FATAL 53300 in PostgreSQL's format (nothing is negotiated yet, so a
   * client that would send SSLRequest reads it as the answer), then closed without reading a byte of it.
   */
  #refuse(socket: RelaySocket, rule: string, error: ClientError): void {
    this.#host.metrics.sessionAccepted();
    this.#host.metrics.sessionOutcome("limited");
    this.#logger.log("warn", "limited", {
      client: formatAddress(socket.remoteAddress),
      rule,
      sqlstate: error.code,
      message: error.message,
    });
    const linger = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
    socket.listen({ data() {}, drain() {}, close: () => clearTimeout(linger) });
    socket.write(encodeErrorResponse(error));
    socket.end();
  }

  /**
   * A key of this worker's resolves to the server its client holds now, with that server's real key. A key
   * of another worker's (`--workers`) goes, as the client sent it, to that worker's cancel listener, unless
   * it came from there (`local`). Anything else is dropped.
   */
  #cancelTarget(processId: number, secretKey: Uint8Array, local: boolean): CancelRoute | undefined {
    if (!this.#cancelKeys.ownsProcessId(processId)) {
      const worker = workerOfProcessId(processId);
      const address = local ? undefined : this.#cancelPeers?.get(worker);
      if (address) return { address, packet: cancelRequest(processId, secretKey), worker };
      return this.#passthroughCancel(processId, secretKey);
    }
    const target = this.#cancelKeys.resolve(processId, secretKey);
    if (!target) return this.#passthroughCancel(processId, secretKey);
    const { processId: backendPid, secretKey: backendSecret } = target.key;
    return { address: target.server.address, packet: cancelRequest(backendPid, backendSecret), backendPid };
  }

  /**
   * With `tls.mode: passthrough` pgrelay cannot rewrite BackendKeyData: those clients hold the server's own
   * key. A key pgrelay does not know may be one of them, so it goes to the configured upstream unchanged,
   * which judges it (as before pgrelay issued keys). Otherwise it is dropped.
   */
  #passthroughCancel(processId: number, secretKey: Uint8Array): CancelRoute | undefined {
    if (this.#settings.clientEncryption?.mode !== "passthrough") return undefined;
    return { address: this.#settings.upstream, packet: cancelRequest(processId, secretKey) };
  }

  /**
   * A connection from another worker on this worker's loopback cancel listener: one CancelRequest for a key
   * of this worker's, already counted and rate-limited by the worker that received it from the client.
   */
  #acceptPeerCancel(socket: RelaySocket): void {
    const host: FrontendHost = {
      connect: this.#host.connect,
      logger: this.#logger,
      metrics: NO_METRICS,
      cancelOnly: true,
      cancelTarget: (pid, secret) => this.#cancelTarget(pid, secret, true),
      sessionEnded: (session) => this.#peerCancels.delete(session),
    };
    const session = new Frontend(`${this.#idPrefix}-c${this.#nextId++}`, socket, this.#settings, host);
    this.#peerCancels.add(session);
    session.start();
  }

  async #closeCancelListener(): Promise<void> {
    await this.#cancelListener?.close();
    this.#cancelListener = undefined;
    for (const session of this.#peerCancels) session.terminate(new ClientError({ severity: "FATAL", code: SQLSTATE.ADMIN_SHUTDOWN, message: "pgrelay is shutting down" }));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function settingsOf(options: RelaySettings): RelaySettings {
  return {
    upstream: options.upstream,
    router: options.router ?? singleUpstreamRouter(options.upstream, options.upstreamEncryption),
    startupTimeoutMs: options.startupTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    maxMessageBytes: options.maxMessageBytes,
    clientEncryption: options.clientEncryption ?? NO_CLIENT_TLS,
    upstreamEncryption: options.upstreamEncryption ?? NO_UPSTREAM_TLS,
    authentication: options.authentication ?? { mode: "relay" },
    bandwidthPerSession: options.bandwidthPerSession ?? 0,
  };
}
