/**
 * The frontend: one client connection. It runs the startup phase that pgrelay must understand (SSLRequest,
 * GSSENCRequest, direct TLS, CancelRequest, StartupMessage), client TLS, admission and client authentication,
 * then holds a *binding* to one server connection (src/backend/server_connection.ts) and relays between the
 * two with pumps that forward bytes untouched while the frame scanners keep the facts current. The client
 * socket is the frontend's; the server connection is an object of its own, with its own facts.
 *
 * Client leg encryption (`tls.mode`): `disable` answers SSLRequest with N; `terminate` answers S and runs
 * TLS with pgrelay's certificate; `passthrough` hands the SSLRequest to the server and splices the
 * encrypted stream, so pgrelay sees no query. https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
import { BACKEND, FRONTEND } from "../protocol/codes.ts";
import { ClientError } from "../protocol/client_error.ts";
import { encodeErrorResponse } from "../protocol/error_response.ts";
import { FrameScanner } from "../protocol/frame_scanner.ts";
import { ProtocolError } from "../protocol/protocol_error.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";
import { decodeStartupPacket } from "../protocol/startup.ts";
import { startupFacts } from "../protocol/startup_facts.ts";
import { StartupReader } from "../protocol/startup_reader.ts";
import { BACKEND_CAPTURES, type BackendEvents, BackendObserver } from "../backend/backend_observer.ts";
import { channelBindingProblem, PLAINTEXT_CLIENT_BINDING_ERROR, saslOfferWithoutChannelBinding } from "./channel_binding.ts";
import type { Logger } from "../core/logger.ts";
import type { MetricsSink, SessionOutcome } from "../core/metrics_sink.ts";
import type { Admission, Auditor, SessionAudit } from "../core/session_hooks.ts";
import { QueryTimer } from "../core/query_timer.ts";
import { type AuthQuerySettings, fetchVerifier } from "../backend/auth_query.ts";
import { authenticateClient, type ClientLogin, loginUpstream, lookupUser, MockedLoginFailed } from "../core/scram_login.ts";
import { RelayPump } from "../core/relay_pump.ts";
import type { RelaySettings } from "../core/relay_settings.ts";
import { SessionContext } from "../core/session_context.ts";
import type { Connector, RelaySocket, SocketAddress } from "../core/socket.ts";
import { NO_CLIENT_TLS, NO_UPSTREAM_TLS, tlsForHost } from "../core/tls_settings.ts";
import { requestTls, secureUpstream } from "../backend/upstream_tls.ts";
import { handshakeFailed, upstreamLost, upstreamMalformed, upstreamUnreachable } from "../backend/upstream_errors.ts";
import { cancelRequest } from "../protocol/frontend_messages.ts";
import { backendKeyDataFrame, type CancelableServer, type CancelRoute, type ClientCancelKey } from "../core/cancel_binding.ts";
import { hostAddress, type Router, singleUpstreamRouter } from "../routing/router.ts";
import { parseServerBoolean, targetAcceptsServer } from "../routing/target.ts";
import { openServer } from "../backend/open_server.ts";
import type { ServerConnection } from "../backend/server_connection.ts";
import { runQuietly } from "../backend/server_exchange.ts";
import { authenticationOk, negotiateProtocolVersion, parameterStatus, readyForQuery } from "../protocol/backend_messages.ts";
import type { PooledRoute, Pools } from "./pooled_route.ts";
import type { BackendKey } from "../routing/cancel_keys.ts";
import { reportedStartupSql, startupSettings } from "./replay_settings.ts";
import { SessionState } from "../pool/session_state.ts";
import { trackClientMessage, trackServerMessage } from "../pool/session_frames.ts";
import { pinReasonOf } from "../pool/session_commands.ts";
import { pinRefusal } from "./pin_refusal.ts";
import { noEligibleHost, noRoute, wrongServerRole } from "../core/routing_errors.ts";
import { readUntilReady } from "../backend/server_ready.ts";
import type { UpstreamTlsSettings } from "../core/tls_settings.ts";

/** What a frontend needs from the proxy that owns it. */
export interface FrontendHost {
  readonly connect: Connector;
  readonly logger: Logger;
  readonly metrics: MetricsSink;
  /** Decides whether a session may connect upstream (policy, limits); everyone may when absent. */
  readonly admission?: Admission | undefined;
  /** Observes sessions for the audit log; absent or returning undefined when audit is off. */
  readonly auditor?: Auditor | undefined;
  /**
   * Where a CancelRequest with this (pgrelay-issued) key goes and what is sent there; undefined when the key
   * is unknown, stale or wrong, or its client holds no server: the request is then dropped silently.
   */
  cancelTarget(processId: number, secretKey: Uint8Array): CancelRoute | undefined;
  /**
   * Issues the key a client sees in place of its server's BackendKeyData, bound to that server connection.
   * Throws RangeError when the registry is full. Absent: the server's own key reaches the client.
   */
  issueCancelKey?(server: CancelableServer, secretLength: number): ClientCancelKey;
  /** The pools of pooled routes (absent: no route pools). */
  readonly pools?: Pools | undefined;
  /** Connections of the loopback worker-to-worker cancel listener: a CancelRequest is all they may send. */
  readonly cancelOnly?: boolean;
  /** The session left its startup phase: it is ready or passes TLS through (not called when it just ends). */
  startupEnded?(session: Frontend): void;
  /** The session ended; both sockets are closed or closing. */
  sessionEnded(session: Frontend): void;
}

export type EndReason =
  | "client_closed"
  | "server_closed"
  | "startup_timeout"
  | "protocol_error"
  | "upstream_unreachable"
  | "tls_required"
  | "tls_failed"
  | "channel_binding"
  | "auth_failed"
  | "cancel_request"
  | "denied"
  | "limited"
  | "policy_revoked"
  | "admin_terminated"
  | "no_route"
  | "no_eligible_host"
  | "wrong_server_role"
  | "host_down"
  | "shutdown";

const ACCEPT_ENCRYPTION = new Uint8Array(["S".charCodeAt(0)]);
/** What replaces a frame that must not reach the server (a pooled client's Terminate). */
const NOTHING = new Uint8Array(0);
/** The client frames a pooled session reads: its Terminate, and what SessionState tracks. */
const POOLED_CAPTURES = [
  FRONTEND.TERMINATE,
  FRONTEND.QUERY,
  FRONTEND.PARSE,
  FRONTEND.BIND,
  FRONTEND.EXECUTE,
  FRONTEND.CLOSE,
  FRONTEND.SYNC,
  FRONTEND.FUNCTION_CALL,
];
/** Each pooled server connection's session state (settings it has, what pins it), fed while it is lent. */
const serverStates = new WeakMap<ServerConnection, SessionState>();
function stateOf(server: ServerConnection): SessionState {
  let state = serverStates.get(server);
  if (!state) {
    state = new SessionState({ parameters: server.facts.parameters });
    serverStates.set(server, state);
  }
  return state;
}
const textDecoder = new TextDecoder();
/** Named statements a pooled client may hold; one more pins it for good instead of growing the set. */
const MAX_NAMED_STATEMENTS = 10_000;
/** Close's target byte for a statement. */
const STATEMENT = "S".charCodeAt(0);
/** A simple Query that drops every prepared statement of the session. */
const CLEARS_STATEMENTS = /^\s*(deallocate\s+(prepare\s+)?all|discard\s+all)\s*;?\s*$/i;
/** The SQL text of a Query or Parse body. */
function sqlOf(type: number, body: Uint8Array): string {
  let at = 0;
  if (type === FRONTEND.PARSE) at = body.indexOf(0) + 1;
  const end = body.indexOf(0, at);
  return textDecoder.decode(body.subarray(at, end < 0 ? body.length : end));
}
/** After pgrelay ends a client's connection, the longest it waits for the peer to close before destroying it. */
const CLOSE_GRACE_MS = 1000;
/** Bytes a closing client may still send (a Terminate, bytes in flight) before pgrelay destroys the connection. */
const CLOSE_DROP_BYTES = 65536;
const REFUSE_ENCRYPTION = new Uint8Array(["N".charCodeAt(0)]);
/** The first byte of a TLS handshake record: a client using direct TLS (PostgreSQL 17 sslnegotiation=direct). */
const TLS_HANDSHAKE_RECORD = 0x16;

export class Frontend {
  readonly context: SessionContext;
  readonly #host: FrontendHost;
  readonly #settings: RelaySettings;
  readonly #reader = new StartupReader();
  #client: RelaySocket;
  /** The binding: the server connection this client is relayed to now, if any. */
  #server: ServerConnection | null = null;
  #toServer: RelayPump | undefined;
  #toClient: RelayPump | undefined;
  #pendingClientBytes: Uint8Array | undefined;
  #startupTimer: ReturnType<typeof setTimeout> | undefined;
  #firstChunk = true;
  #clientOpen = true;
  #endReason: EndReason | undefined;
  #outcome: SessionOutcome | undefined;
  #ended = false;
  /** The admission's connection-limit slot; released once, by #releaseSlot, whatever the path. */
  #slot: (() => void) | undefined;
  /** A StartupMessage or CancelRequest was accepted: no startup packet is ever decoded again. */
  #startupTaken = false;
  /** auth.mode scram: pgrelay runs SCRAM with the client now; bytes it did not ask for are a protocol violation. */
  #authenticatingClient = false;
  /** The raw client socket while pgrelay's TLS handshake runs on it (its events belong to the TLS layer). */
  #tlsHandshake: RelaySocket | undefined;
  /** pgrelay is ending the client leg: it reads nothing more and writes nothing more. */
  #clientClosing = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #audit: SessionAudit | undefined;
  /** Requests of the client not yet answered (set once relaying starts). */
  #queries: QueryTimer | undefined;
  /** The cancel key of pgrelay's that the client holds (issued at the server's BackendKeyData). */
  #cancelKey: ClientCancelKey | undefined;
  readonly #router: Router;
  /** The relay's scanner of the client's stream and the handlers of its server's frames (see #relayParts). */
  #parts: { frontend: FrameScanner; backendEvents: BackendEvents } | undefined;
  /** The pool this client borrows servers from (pooled routes only). */
  #pool: PooledRoute | undefined;
  /** Pooled: the client's settings and what pins it to its server, fed with what passes (src/pool/session_state.ts). */
  #state: SessionState | undefined;
  /** Pooled, transaction mode: the client's named protocol-level statements (they pin it to its server). */
  readonly #namedStatements = new Set<string>();
  /** Pooled, transaction mode: the server is idle with nothing outstanding and goes back once flushed. */
  #releaseDue = false;
  readonly #acceptedAt = performance.now();

  constructor(id: string, client: RelaySocket, settings: RelaySettings, host: FrontendHost) {
    this.context = new SessionContext(id, client.remoteAddress);
    this.#client = client;
    this.#settings = settings;
    this.#host = host;
    this.#router = settings.router ?? singleUpstreamRouter(settings.upstream, settings.upstreamEncryption);
  }

  /** Bytes written to either socket that the operating system has not taken yet. */
  get bufferedBytes(): number {
    return this.#client.pendingBytes + (this.#server?.socket.pendingBytes ?? 0);
  }

  /** Requests the client sent that the server has not answered yet (0 before relaying starts). */
  get outstandingRequests(): number {
    return this.#queries?.outstanding ?? 0;
  }

  /** The server connection this client is bound to now (null before it connects and after it closes). */
  get server(): ServerConnection | null {
    return this.#server;
  }

  get #serverOpen(): boolean {
    return this.#server?.open ?? false;
  }

  get #clientTls() {
    return this.#settings.clientEncryption ?? NO_CLIENT_TLS;
  }

  start(): void {
    this.#host.metrics.sessionAccepted();
    this.#startupTimer = setTimeout(() => this.#startupTimedOut(), this.#settings.startupTimeoutMs);
    this.#listenToClient(this.#client);
  }

  /** Ends the session from outside (shutdown, revocation, the admin API): FATAL to the client where the stream allows it. */
  terminate(error: ClientError, reason: EndReason = "shutdown"): void {
    this.#fail(error, reason);
  }

  #listenToClient(socket: RelaySocket): void {
    socket.listen({
      data: (chunk) => this.#toServer ? this.#toServer.forward(chunk) : this.#unboundData(chunk),
      drain: () => {
        this.#toClient?.drained();
        if (this.#releaseDue) this.#releaseWhenFlushed();
      },
      close: (error) => this.#clientClosed(error),
    });
  }

  /** Bytes from a client bound to no server: its startup, or (pooled, between transactions) its next request. */
  #unboundData(chunk: Uint8Array): void {
    if (this.#pool && this.context.phase === "ready") this.#leaseFor(chunk);
    else this.#startupData(chunk);
  }

  #startupData(chunk: Uint8Array): void {
    if (this.#startupTaken || this.context.phase !== "startup") {
      this.#bytesAfterStartup(chunk);
      return;
    }
    const first = this.#firstChunk;
    this.#firstChunk = false;
    if (first && chunk[0] === TLS_HANDSHAKE_RECORD && this.#clientTls.mode !== "disable" && !this.#host.cancelOnly) {
      this.#startDirectTls(chunk);
      return;
    }
    let rest = chunk;
    try {
      while (rest.length > 0) {
        const read = this.#reader.push(rest);
        if (read === null) return;
        rest = read.rest;
        const packet = decodeStartupPacket(read.packet);
        if (this.#host.cancelOnly && packet.kind !== "cancel_request") {
          throw new ProtocolError("the worker cancel listener accepts only a CancelRequest");
        }
        switch (packet.kind) {
          case "ssl_request":
            if (this.context.clientTls === "none" && this.#clientTls.mode !== "disable") {
              // CVE-2021-23214: bytes sent before the handshake must not count as part of the encrypted session.
              if (rest.length > 0) throw new ProtocolError("received unencrypted data after SSL request");
              if (this.#clientTls.mode === "terminate") void this.#terminateTls();
              else void this.#passthrough(read.packet);
              return;
            }
            this.#host.metrics.encryptionRequest("ssl", "N");
            this.#client.write(REFUSE_ENCRYPTION);
            continue;
          case "gssenc_request":
            this.#host.metrics.encryptionRequest("gssenc", "N");
            this.#client.write(REFUSE_ENCRYPTION);
            continue;
          case "cancel_request":
            this.#startupTaken = true;
            this.#forwardCancel(packet.processId, packet.secretKey);
            return;
          case "startup":
            // Exactly one StartupMessage per connection: whatever follows is never decoded as another one.
            this.#startupTaken = true;
            this.context.adoptStartupFacts(startupFacts(packet.pairs));
            this.context.protocol = `${packet.major}.${packet.minor}`;
            if (this.#clientTls.require && this.context.clientTls === "none") {
              this.#fail(new ClientError({
                severity: "FATAL",
                code: SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
                message: "pgrelay requires TLS: this connection is not encrypted",
                hint: "Connect with sslmode=require (or verify-ca / verify-full).",
              }), "tls_required");
              return;
            }
            if (this.#settings.authentication?.mode === "scram") {
              this.#authenticatingClient = true;
              if (rest.length > 0) {
                this.#bytesAfterStartup(rest);
                return;
              }
              if (!this.#admit()) return;
              void this.#authenticateThenConnect(read.packet);
              return;
            }
            if (!this.#admit()) return;
            if (rest.length > 0) this.#holdEarlyClientBytes(rest);
            void this.#connectUpstream(read.packet);
            return;
        }
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.#fail(new ClientError({ severity: "FATAL", code: error.sqlstate, message: error.message }), "protocol_error");
    }
  }

  /** The admission step: policy and limits decide before the server hears of the client. */
  #admit(): boolean {
    const admission = this.#host.admission;
    if (admission) {
      const verdict = admission.admit(this.context);
      if (!verdict.allowed) {
        clearTimeout(this.#startupTimer);
        this.#host.auditor?.refused(this.context, verdict);
        this.#reportOutcome(verdict.kind);
        this.#fail(verdict.error, verdict.kind);
        return false;
      }
      this.#holdSlot(verdict.release);
      this.context.admittedBy = verdict.rule;
    }
    // The upstream: form has one server; with clusters it is known once the session connects.
    if (this.#router.clusters.has("upstream") && this.#router.clusters.size === 1) this.context.upstream = this.#settings.upstream;
    this.#audit = this.#host.auditor?.begin(this.context, this.context.admittedBy ?? "none");
    return true;
  }

  /** SSLRequest in terminate mode: answer S and run the TLS handshake with pgrelay's certificate. */
  async #terminateTls(replay?: Uint8Array): Promise<void> {
    const server = this.#clientTls.server;
    const raw = this.#client;
    if (!server || !raw.upgradeTls) {
      this.#host.logger.log("error", "tls_unavailable", { session: this.context.id, error: "pgrelay has no TLS certificate loaded" });
      this.#fail(handshakeFailed(this.context.id), "tls_failed");
      return;
    }
    this.#host.metrics.encryptionRequest("ssl", "S");
    raw.pause();
    if (!replay) raw.write(ACCEPT_ENCRYPTION);
    // From here until the handshake ends, nothing may be written in plaintext: a failure (startup_timeout,
    // shutdown) destroys the raw socket, and the raw socket's close is the TLS layer's to see, not ours.
    this.#tlsHandshake = raw;
    let secure: RelaySocket;
    try {
      secure = await raw.upgradeTls({
        role: "server",
        server: replay ? { ...server, alpnProtocols: ["postgresql"] } : server,
        ...(replay ? { replay } : {}),
      });
    } catch (error) {
      this.#tlsHandshake = undefined;
      if (!this.#clientOpen) return; // already ended (timed out, shut down)
      this.#host.logger.log("warn", "tls_failed", { session: this.context.id, leg: "client", error: (error as Error).message });
      this.#endReason = "tls_failed";
      this.#reportOutcome("protocol_error");
      raw.destroy();
      this.#clientClosed();
      return;
    }
    this.#tlsHandshake = undefined;
    if (!this.#clientOpen) {
      secure.destroy();
      return;
    }
    if (replay && secure.tls?.alpn !== "postgresql") {
      // PostgreSQL requires ALPN "postgresql" on direct TLS connections, so a client cannot be confused
      // about which protocol runs inside.
      this.#client = secure;
      this.#listenToClient(secure);
      this.#fail(new ClientError({
        severity: "FATAL",
        code: SQLSTATE.PROTOCOL_VIOLATION,
        message: "received direct SSL connection request without ALPN protocol negotiation extension",
        hint: 'Direct TLS needs ALPN "postgresql" (libpq 17: sslnegotiation=direct).',
      }), "protocol_error");
      return;
    }
    this.#client = secure;
    this.context.clientTls = "terminated";
    this.context.clientTlsProtocol = secure.tls?.protocol;
    this.#listenToClient(secure);
    secure.resume();
  }

  /** A client that starts with a TLS record (direct TLS): no SSLRequest, ALPN "postgresql" required. */
  #startDirectTls(firstChunk: Uint8Array): void {
    if (this.#clientTls.mode === "terminate") void this.#terminateTls(firstChunk);
    else void this.#passthrough(undefined, firstChunk);
  }

  /**
   * Passthrough: the server answers the client's SSLRequest (or receives its direct TLS handshake) and the
   * encrypted stream is spliced both ways. pgrelay sees neither authentication nor queries.
   */
  async #passthrough(sslRequest: Uint8Array | undefined, directTls?: Uint8Array): Promise<void> {
    const client = this.#client;
    client.pause();
    // pgrelay never sees the user or database of an end-to-end encrypted session: rules see source and TLS.
    this.context.clientTls = "passthrough";
    if (!this.#admit()) return;
    this.context.clientTls = "none";
    const server = await this.#openUpstream(false, true);
    if (!server) return;
    if (sslRequest) {
      let answer: string;
      try {
        answer = await requestTls(server.socket, this.#settings.connectTimeoutMs, sslRequest);
      } catch (error) {
        server.destroy();
        this.#upstreamFailed(`pgrelay could not pass TLS through to upstream`, error as Error);
        return;
      }
      if (answer !== "S") {
        // The server refuses TLS: tell the client so, and let it go on in plaintext through a new connection,
        // admitted again on what its StartupMessage says.
        server.destroy();
        this.#releaseSlot();
        this.#host.metrics.encryptionRequest("ssl", "N");
        this.context.phase = "startup";
        client.write(REFUSE_ENCRYPTION);
        client.resume();
        return;
      }
      this.#host.metrics.encryptionRequest("ssl", "S");
      client.write(ACCEPT_ENCRYPTION);
    }
    this.context.clientTls = "passthrough";
    this.context.phase = "passthrough";
    clearTimeout(this.#startupTimer);
    this.#host.startupEnded?.(this);
    this.#reportOutcome("passthrough");
    this.#host.metrics.tlsSession("passthrough", false);
    this.#host.logger.log("info", "session_passthrough", {
      ...this.context.toJSON(),
      note: "end-to-end TLS: pgrelay relays encrypted bytes and sees no authentication or queries",
    });
    this.#startPumps(server, null);
    if (directTls) this.#toServer!.forward(directTls);
    server.socket.resume();
    client.resume();
  }

  /**
   * Bytes a client sends after its StartupMessage (or while pgrelay negotiates for it) and before the relay
   * runs. While pgrelay authenticates the client itself (auth.mode scram) it asks for each message, so bytes
   * it did not ask for are a protocol violation; otherwise they are the server's to judge, and are held.
   */
  #bytesAfterStartup(chunk: Uint8Array): void {
    if (this.#authenticatingClient) {
      this.#fail(new ClientError({
        severity: "FATAL",
        code: SQLSTATE.PROTOCOL_VIOLATION,
        message: "client sent data before pgrelay asked for it during authentication",
        hint: "Send exactly one startup packet, then wait for the authentication request.",
      }), "protocol_error");
      return;
    }
    this.#holdEarlyClientBytes(chunk);
  }

  /** Bytes a client sends after its StartupMessage but before the upstream is connected. */
  #holdEarlyClientBytes(chunk: Uint8Array): void {
    const held = this.#pendingClientBytes?.length ?? 0;
    if (held + chunk.length > 65536) {
      this.#fail(new ClientError({
        severity: "FATAL",
        code: SQLSTATE.PROTOCOL_VIOLATION,
        message: "client sent more than 64 KiB before the server answered its startup message",
      }), "protocol_error");
      return;
    }
    const joined = new Uint8Array(held + chunk.length);
    if (this.#pendingClientBytes) joined.set(this.#pendingClientBytes);
    joined.set(chunk, held);
    this.#pendingClientBytes = joined;
  }

  /**
   * Routes the session (its facts pick a route, the route a cluster and target), then connects to the
   * cluster's first candidate that accepts (connect retry), holding the client while none is eligible.
   * `secure`: applies the cluster's upstream TLS (else `upstream_tls`); `passthrough`: the client's own TLS
   * goes through (its route sees `tls: true` and no user or database). On failure the client has its
   * FATAL (28000 no route, 57P03 no eligible host, 08001 unreachable) and this returns undefined.
   */
  async #openUpstream(secure: boolean, passthrough = false): Promise<ServerConnection | undefined> {
    this.context.phase = "connecting";
    const abandoned = () => !this.#clientOpen || this.#endReason !== undefined;
    const opened = await openServer({
      // A passthrough client encrypts end to end: for routes, as for the policy, its connection is TLS.
      facts: this.#routeFacts(passthrough),
      secure,
      logFields: () => this.context.toJSON(),
      abandoned,
      routed: (route) => {
        this.context.route = route;
        this.#host.metrics.routeSession?.(route);
      },
      trying: (address) => this.context.upstream = address,
    }, {
      router: this.#router,
      connect: this.#host.connect,
      connectTimeoutMs: this.#settings.connectTimeoutMs,
      upstreamTls: this.#settings.upstreamEncryption,
      metrics: this.#host.metrics,
      logger: this.#host.logger,
    });
    if (opened.ok) {
      this.context.upstream = opened.server.facts.address;
      return opened.server;
    }
    switch (opened.failure) {
      case "no_route":
        this.#host.logger.log("warn", "no_route", this.context.toJSON());
        this.#fail(noRoute(this.context.id), "no_route");
        break;
      case "unreachable":
        // No health checks (the upstream: form): as before routing, the host is unreachable.
        this.#upstreamFailed(opened.what, opened.error, false);
        break;
      case "no_eligible_host":
        this.#host.logger.log("warn", "no_eligible_host", { ...this.context.toJSON(), cluster: opened.cluster, target: opened.target, error: opened.reason });
        this.#fail(noEligibleHost(this.context.id, opened.cluster, opened.target), "no_eligible_host");
        break;
      case "abandoned":
        break;
    }
    return undefined;
  }

  /** The client gets a plain 08001 with the session id; the address and the cause go to the log only. */
  #upstreamFailed(what: string, error: Error, count = true): void {
    if (count) this.#host.metrics.upstreamConnectFailed();
    this.#host.logger.log("warn", "upstream_failed", {
      ...this.context.toJSON(),
      error: `${what} ${formatAddress(this.context.upstream ?? this.#settings.upstream)}: ${error.message}`,
    });
    this.#fail(upstreamUnreachable(this.context.id), "upstream_unreachable");
  }

  async #connectUpstream(startupPacket: Uint8Array): Promise<void> {
    this.#client.pause();
    const server = await this.#openSecuredUpstream();
    if (server) this.#startRelay(server, { startupPacket });
  }

  /** The upstream connection with the cluster's TLS (else `upstream_tls`) applied; on failure the client has its FATAL. */
  async #openSecuredUpstream(): Promise<ServerConnection | undefined> {
    return await this.#openUpstream(true);
  }

  /**
   * auth.mode scram: pgrelay runs SCRAM with the client, then logs in upstream with the ClientKey it
   * recovered, and relays from the server's AuthenticationOk on.
   */
  async #authenticateThenConnect(startupPacket: Uint8Array): Promise<void> {
    const auth = this.#settings.authentication;
    if (auth?.mode !== "scram") return;
    const limits = { timeoutMs: this.#settings.startupTimeoutMs, maxBodyBytes: 65536 };
    const user = this.context.user;
    let login: ClientLogin;
    try {
      const query = auth.query;
      login = await authenticateClient(this.#client, user, {
        ...limits,
        lookup: () =>
          lookupUser(auth.users, user, query && (() => this.#queryVerifier(query, user, limits.timeoutMs))),
        certificatePem: this.context.clientTls === "terminated" ? this.#clientTls.server?.cert : undefined,
        onClose: (error) => this.#clientClosed(error),
        mock: auth.mock,
        // A session that failed meanwhile (bytes it did not ask for, a timeout) must not start reading again.
        abandoned: () => this.#clientClosing || !this.#clientOpen,
      });
    } catch (caught) {
      this.#authenticatingClient = false;
      // After a mock exchange the client saw a wrong-password failure; the real reason goes to the log only.
      const hidden = caught instanceof MockedLoginFailed ? caught.reason : undefined;
      const error = caught instanceof MockedLoginFailed ? caught.cause : caught;
      if (error instanceof ClientError) this.#fail(error, "auth_failed", hidden);
      else if (error instanceof ProtocolError) {
        this.#fail(new ClientError({ severity: "FATAL", code: error.sqlstate, message: error.message }), hidden ? "auth_failed" : "protocol_error", hidden);
      } else if (this.#clientOpen || hidden) {
        this.#host.logger.log("warn", "client_auth_error", { session: this.context.id, error: (error as Error).message });
        this.#fail(handshakeFailed(this.context.id, SQLSTATE.PROTOCOL_VIOLATION), "auth_failed", hidden);
      }
      return;
    }
    this.#authenticatingClient = false;
    this.#client.pause();
    this.#listenToClient(this.#client);
    const pool = this.#host.pools?.poolFor(this.#routeFacts(), { user, database: this.context.database, login });
    if (pool) {
      this.#pool = pool;
      await this.#startPooled(pool, startupPacket);
      return;
    }
    // pgrelay logs in itself, so a server whose role turns out wrong for the route's target (stale health)
    // is left for the next candidate before the client sees anything: at most one try per host.
    for (let attempt = 0;; attempt++) {
      const server = await this.#openSecuredUpstream();
      if (!server) return;
      const retried = await this.#loginUpstream(server, startupPacket, login, { ...limits, user, requireAuth: auth.upstreamRequireAuth }, attempt);
      if (!retried) return;
    }
  }

  /**
   * pgrelay's login on `server` for a client it authenticated; resolves true when the server's role does not
   * suit the route's target and the next host should be tried (the host is marked down until a check passes).
   */
  async #loginUpstream(
    server: ServerConnection,
    startupPacket: Uint8Array,
    login: ClientLogin,
    options: Parameters<typeof loginUpstream>[3],
    attempt: number,
  ): Promise<boolean> {
    try {
      const result = await loginUpstream(server.socket, startupPacket, login, options);
      if (!this.#clientOpen) {
        server.destroy();
        return false;
      }
      const binding = server.placement;
      if (result.ok && binding.target !== "any") {
        const ready = await readUntilReady(server.socket, result.rest, options.timeoutMs);
        if (!this.#clientOpen) {
          server.destroy();
          return false;
        }
        if (targetAcceptsServer(binding.target, ready.facts) === false && attempt < binding.cluster.cluster.hosts.length) {
          server.destroy();
          this.#host.logger.log("warn", "wrong_server_role_retry", { ...this.context.toJSON(), cluster: binding.cluster.settings.name, host: binding.host.address, target: binding.target });
          const change = binding.host.recordConnectFailure(`its role no longer suits target ${binding.target} (stale health check)`);
          binding.cluster.checker?.report(binding.host, change);
          return true;
        }
        this.#startRelay(server, { serverBytes: ready.bytes });
        return false;
      }
      if (result.ok) {
        this.#startRelay(server, { serverBytes: result.rest });
        return false;
      }
      // The server refused pgrelay's login: the client gets the server's own error, as it is.
      server.destroy();
      this.#reportOutcome("auth_failed");
      this.#endReason = "auth_failed";
      this.#host.logger.log("warn", "upstream_login_refused", this.context.toJSON());
      if (!this.#clientClosing) this.#client.write(result.frame);
      this.#closeClient();
      return false;
    } catch (error) {
      server.destroy();
      if (error instanceof ClientError) this.#fail(error, "auth_failed");
      else this.#upstreamFailed("pgrelay could not log in to upstream", error as Error);
      return false;
    }
  }

  /**
   * Runs auth.query for a user auth.file does not list. When it fails (server unreachable, auth.user
   * refused, query error) the cause goes to the log and the user counts as unknown: the client then gets the
   * mock exchange and the error a wrong password gets, so it learns neither the cause, nor auth.user's name,
   * nor whether the user is listed.
   */
  async #queryVerifier(query: AuthQuerySettings, user: string, timeoutMs: number): Promise<string | undefined> {
    const connectTimeoutMs = this.#settings.connectTimeoutMs;
    let plain: RelaySocket | undefined;
    let step = "connect to";
    // The first host of the session's cluster that is up (any role: every host has the same roles).
    const { address, tls } = this.#authQueryHost();
    try {
      plain = await this.#host.connect(address, { timeoutMs: connectTimeoutMs });
      step = "secure the connection to";
      const server = await secureUpstream(plain, tls, connectTimeoutMs);
      step = "run auth.query on";
      return await fetchVerifier(server, query, user, { timeoutMs });
    } catch (error) {
      if (step === "connect to") this.#host.metrics.upstreamConnectFailed();
      if (step === "secure the connection to") plain?.destroy();
      this.#host.logger.log("warn", "auth_query_failed", {
        ...this.context.toJSON(),
        auth_user: query.user,
        error: `pgrelay could not ${step} upstream ${formatAddress(address)}: ${(error as Error).message}`,
      });
      return undefined;
    }
  }

  /** Where auth.query runs: the first host up in the cluster the session's facts route to, else `upstream`. */
  #authQueryHost(): { address: SocketAddress; tls: UpstreamTlsSettings } {
    const fallback = { address: this.#settings.upstream, tls: this.#settings.upstreamEncryption ?? NO_UPSTREAM_TLS };
    const routed = this.#router.route(this.#routeFacts());
    if (!routed) return fallback;
    const hosts = routed.cluster.cluster.hosts;
    const host = hosts.find((candidate) => candidate.up) ?? hosts[0]!;
    const address = hostAddress(host.address);
    return { address, tls: tlsForHost(routed.cluster.tls ?? fallback.tls, address.hostname) };
  }

  #routeFacts(passthrough = false) {
    return {
      user: this.context.user,
      database: this.context.database,
      applicationName: this.context.applicationName,
      replication: this.context.replication,
      source: this.context.client.hostname,
      tls: passthrough || this.context.tls,
      now: new Date(),
      serverName: this.#client.tls?.serverName,
    };
  }

  /**
   * Starts relaying between the client and `server`: either sending the client's StartupMessage (the
   * server authenticates the client through pgrelay), or forwarding the server's bytes from
   * AuthenticationOk on (pgrelay authenticated both sides itself).
   */
  #startRelay(server: ServerConnection, start: { startupPacket?: Uint8Array; serverBytes?: Uint8Array }): void {
    this.context.phase = "authenticating";
    this.context.server = server.facts;
    this.#host.metrics.tlsSession(this.context.clientTls, this.context.upstreamTls);
    const { frontend, backendEvents } = this.#relayParts();
    const backend = new FrameScanner(
      new BackendObserver(server.facts, backendEvents),
      {
        maxBodyBytes: this.#settings.maxMessageBytes,
        capture: BACKEND_CAPTURES,
        peer: "server",
        // BackendKeyData is rewritten: it reaches the client whole even when it straddles reads.
        ...(this.#host.issueCancelKey ? { whole: [BACKEND.BACKEND_KEY_DATA] } : {}),
      },
    );
    server.scanner = backend;
    this.#startPumps(server, frontend);
    const toServer = this.#toServer!;
    this.#listenToClient(this.#client);
    if (start.startupPacket && !server.socket.write(start.startupPacket)) toServer.stall();
    const early = this.#pendingClientBytes;
    this.#pendingClientBytes = undefined;
    if (early) toServer.forward(early);
    if (start.serverBytes && start.serverBytes.length > 0) this.#toClient!.forward(start.serverBytes);
    if (!this.#toClient!.stalled) server.socket.resume();
    if (!toServer.stalled) this.#client.resume();
  }

  /**
   * A pooled route: the client authenticated with pgrelay; it is answered from a server the pool lends
   * (AuthenticationOk, the server's parameters with the client's settings applied, a cancel key of
   * pgrelay's, ReadyForQuery), then bound to it: for the whole session (session mode), or only while a
   * transaction runs (transaction mode).
   */
  async #startPooled(pool: PooledRoute, startupPacket: Uint8Array): Promise<void> {
    this.context.phase = "connecting";
    this.context.route = pool.route;
    this.#host.metrics.routeSession?.(pool.route);
    const startup = decodeStartupPacket(startupPacket);
    if (startup.kind !== "startup") return;
    const pairs = new Map(startup.pairs);
    const settings = startupSettings(pairs);
    this.#state = new SessionState({
      startup: settings,
      onPinChange: (reason, held) => {
        this.context.pinned = this.#state?.pinned ?? (this.#namedStatements.size > 0 ? "protocol_prepare" : null);
        if (held && this.#server) this.#pool?.pinned(this.#server, reason);
      },
    });
    const server = await this.#borrowServer(settings);
    if (!server) return;
    // The client is told the server's parameters (its own settings applied): from here on they are its own.
    for (const [name, value] of server.facts.parameters) this.#state.parameterStatus(name, value);
    const frames: Uint8Array[] = [];
    // pgrelay speaks protocol 3.0 to pooled servers: a client asking for more (or for _pq_ options) is told so.
    const unsupported = [...pairs.keys()].filter((name) => name.startsWith("_pq_."));
    if (startup.minor > 0 || unsupported.length > 0) frames.push(negotiateProtocolVersion(0, unsupported));
    frames.push(authenticationOk());
    for (const [name, value] of server.facts.parameters) frames.push(parameterStatus(name, value));
    const key = this.#pooledCancelKey(server);
    if (!key) return;
    frames.push(backendKeyDataFrame(key), readyForQuery("I"));
    this.#bindPooled(server);
    for (const frame of frames) this.#client.write(frame);
    this.context.phase = "ready";
    this.#handshakeDone();
    if (pool.mode === "transaction") this.#releasePooled();
    if (this.#clientOpen && !this.#clientClosing) this.#client.resume();
  }

  /**
   * Borrows a server from the pool and applies the client's settings to it; on failure the client has its
   * error (and `ERROR` failures, a wait that timed out, leave the session open) and this returns undefined.
   */
  async #borrowServer(startup?: ReadonlyMap<string, string>): Promise<ServerConnection | undefined> {
    const pool = this.#pool!;
    const abandoned = () => !this.#clientOpen || this.#clientClosing || this.#endReason !== undefined;
    let server: ServerConnection;
    try {
      server = await pool.lease(abandoned);
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      if (abandoned()) return undefined;
      if (error.severity === "ERROR" && this.context.phase === "ready") throw error; // the caller answers it
      // Before the client is ready, any failure ends the session: as FATAL, whatever the pool said.
      const fatal = error.severity === "FATAL" ? error : new ClientError({ ...fieldsOf(error), severity: "FATAL" });
      this.#fail(fatal, error.code === SQLSTATE.TOO_MANY_CONNECTIONS ? "limited" : "upstream_unreachable");
      return undefined;
    }
    if (abandoned()) {
      pool.release(server, server.facts.transactionStatus === "idle");
      return undefined;
    }
    const serverState = stateOf(server);
    const sql = [
      // At startup, the reported settings the client asked for (application_name, TimeZone, ...).
      startup ? reportedStartupSql(startup, server.facts.parameters) : "",
      this.#state!.replayFor(serverState),
    ].filter((text) => text !== "").join("; ");
    if (sql !== "") {
      let refused: Map<string, string> | undefined;
      try {
        serverState.query(sql);
        refused = await runQuietly(server, sql, this.#settings.connectTimeoutMs, (type, body) => trackServerMessage(serverState, type, body));
      } catch (error) {
        pool.release(server, false);
        if (!abandoned()) this.#upstreamFailed("pgrelay could not apply the client's settings on upstream", error as Error);
        return undefined;
      }
      if (refused) {
        // A setting the server refuses (a bad TimeZone in the startup packet): as PostgreSQL refuses the
        // connection, the session ends with the server's own words.
        pool.release(server, server.facts.transactionStatus === "idle");
        this.#fail(new ClientError({
          severity: "FATAL",
          code: (refused.get("C") ?? SQLSTATE.INVALID_PARAMETER_VALUE) as ClientError["code"],
          message: refused.get("M") ?? "the server refused a setting of the client",
        }), "protocol_error");
        return undefined;
      }
      if (abandoned()) {
        pool.release(server, server.facts.transactionStatus === "idle");
        return undefined;
      }
    }
    return server;
  }

  /**
   * The key the pooled client holds for its whole session, bound to whichever server it holds (without a
   * registry, the first server's own key).
   */
  #pooledCancelKey(server: ServerConnection): BackendKey | undefined {
    const issue = this.#host.issueCancelKey;
    const facts = server.facts;
    const real = { processId: facts.backendPid ?? 0, secretKey: facts.backendSecret ?? new Uint8Array(4) };
    if (!issue) return real;
    try {
      this.#cancelKey = issue({ address: facts.address, key: real }, real.secretKey.length);
    } catch (caught) {
      if (!(caught instanceof RangeError)) throw caught;
      this.#pool!.release(server, true);
      this.#fail(new ClientError({ severity: "FATAL", code: SQLSTATE.TOO_MANY_CONNECTIONS, message: "pgrelay has no cancel key left for this session" }), "limited");
      return undefined;
    }
    return this.#cancelKey;
  }

  /** Binds the pooled client to `server`: relay pumps between them, its cancel key pointed at it. */
  #bindPooled(server: ServerConnection): void {
    const { frontend, backendEvents } = this.#relayParts();
    this.#server = server;
    this.context.server = server.facts;
    this.context.upstream = server.facts.address;
    server.observer!.events = backendEvents;
    const facts = server.facts;
    if (facts.backendPid !== undefined && facts.backendSecret !== undefined) {
      this.#cancelKey?.bind({ address: facts.address, key: { processId: facts.backendPid, secretKey: facts.backendSecret } });
    }
    const { toServer, toClient } = this.#pumpsTo(server, frontend);
    server.listen({
      data: (chunk) => {
        toClient.forward(chunk);
        if (this.#releaseDue) this.#releaseWhenFlushed();
      },
      drain: () => toServer.drained(),
      close: (error) => this.#serverClosed(server, error),
    });
    server.socket.resume();
  }

  /** Transaction mode: a ReadyForQuery `I` with nothing outstanding ends the binding once it reached the client. */
  #pooledReady(status: string): void {
    if (this.#pool?.mode !== "transaction" || status !== "idle") return;
    // State that cannot be replayed (LISTEN, a session lock, a temp table...) keeps the server: pinned.
    const state = this.#state;
    if (state && (state.pinned !== null || state.overflowed)) return;
    if (this.#namedStatements.size > 0) return;
    if ((this.#queries?.outstanding ?? 0) === 0) this.#releaseDue = true;
  }

  /**
   * Named protocol-level prepared statements live in one server: until pgrelay renames them per server, a
   * client that holds one keeps its server (pin reason protocol_prepare).
   */
  #trackNamedStatements(type: number, body: Uint8Array): void {
    const before = this.#namedStatements.size;
    if (type === FRONTEND.PARSE && body[0] !== 0) {
      if (this.#namedStatements.size < MAX_NAMED_STATEMENTS) this.#namedStatements.add(textDecoder.decode(body.subarray(0, body.indexOf(0))));
      else this.#namedStatements.add(""); // past the bound: pinned for the rest of the session
    } else if (type === FRONTEND.CLOSE && body[0] === STATEMENT && body[1] !== 0) {
      this.#namedStatements.delete(textDecoder.decode(body.subarray(1, body.indexOf(0, 1))));
    } else if (type === FRONTEND.QUERY && CLEARS_STATEMENTS.test(sqlOf(type, body))) {
      this.#namedStatements.clear();
    } else return;
    if (before === 0 && this.#namedStatements.size > 0) {
      if (this.#server) this.#pool?.pinned(this.#server, "protocol_prepare");
    }
    this.context.pinned = this.#state?.pinned ?? (this.#namedStatements.size > 0 ? "protocol_prepare" : null);
  }

  /** Releases the server once the client took every byte of it (the queued bytes are views of its reads). */
  #releaseWhenFlushed(): void {
    if (!this.#server || this.#toClient?.stalled) return;
    // The client may have sent more while its slow read held the release back: then a later ReadyForQuery decides.
    if ((this.#queries?.outstanding ?? 0) > 0 || this.#server.facts.transactionStatus !== "idle") {
      this.#releaseDue = false;
      return;
    }
    this.#releasePooled();
  }

  /** Ends the binding: the server goes back to the pool, the client stays connected, reading. */
  #releasePooled(): void {
    const server = this.#server;
    this.#releaseDue = false;
    if (!server) return;
    this.#toClient?.dispose();
    this.#toServer?.dispose();
    this.#toClient = undefined;
    this.#toServer = undefined;
    this.#cancelKey?.bind(null);
    this.#server = null;
    this.context.server = undefined;
    this.context.upstream = undefined;
    this.#pool!.release(server, server.open && server.facts.transactionStatus === "idle");
  }

  /**
   * Transaction mode: the client's next request while it holds no server. Its bytes wait (the client is
   * paused, so the view stays valid) until a server is lent, then go through as they are.
   */
  #leaseFor(chunk: Uint8Array): void {
    if (chunk[0] === FRONTEND.TERMINATE) {
      // Leaving: no server is needed to say goodbye.
      this.#endReason ??= "client_closed";
      this.#closeClient();
      return;
    }
    const client = this.#client;
    client.pause();
    void this.#borrowServer().then((server) => {
      if (!server) return;
      this.#bindPooled(server);
      this.#toServer!.forward(chunk);
      if (!this.#toServer?.stalled && this.#clientOpen && !this.#clientClosing) client.resume();
    }, (error) => {
      if (!(error instanceof ClientError)) throw error;
      // Waited too long, or too many wait: the client stays connected and may retry.
      this.#answerUnserved(chunk, error);
      if (this.#clientOpen && !this.#clientClosing) client.resume();
    });
  }

  /**
   * Answers requests no server was found for with `error` (ERROR 53300): one ErrorResponse and a
   * ReadyForQuery per simple Query or Sync in `chunk`, as a server skips to the Sync after an error. A chunk
   * that ends inside a frame cannot be answered in step with the client: the session ends with the error.
   */
  #answerUnserved(chunk: Uint8Array, error: ClientError): void {
    let at = 0;
    let answered = 0;
    while (at + 5 <= chunk.length) {
      const type = chunk[at]!;
      const length = ((chunk[at + 1]! << 24) | (chunk[at + 2]! << 16) | (chunk[at + 3]! << 8) | chunk[at + 4]!) >>> 0;
      if (length < 4 || at + 1 + length > chunk.length) break;
      at += 1 + length;
      if (type === FRONTEND.QUERY || type === FRONTEND.SYNC) {
        if (answered === 0 || type === FRONTEND.QUERY) this.#client.write(encodeErrorResponse(error));
        this.#client.write(readyForQuery("I"));
        answered++;
      }
    }
    this.#host.logger.log("warn", "pool_wait_failed", { ...this.context.toJSON(), sqlstate: error.code, message: error.message });
    if (at !== chunk.length) {
      this.#fail(new ClientError({ severity: "FATAL", code: error.code, message: error.message, hint: error.hint }), "limited");
    }
  }

  /** Pooled: what the client sends that pgrelay must see (its Terminate never reaches a shared server). */
  #pooledClientMessage(scanner: FrameScanner, type: number, body: Uint8Array, _truncated: boolean): void {
    if (type === FRONTEND.TERMINATE) {
      scanner.replaceCurrentFrame(NOTHING);
      return;
    }
    const server = this.#server;
    if (!server) return;
    if (this.#pool!.mode === "transaction" && this.#pool!.onPin === "error" && (type === FRONTEND.QUERY || type === FRONTEND.PARSE)) {
      // on_pin: error: a statement that would pin the client runs as one that fails with 0A000 instead,
      // so the server answers in step with everything else the client sent.
      const reason = pinReasonOf(sqlOf(type, body), { standardConformingStrings: server.facts.parameters.get("standard_conforming_strings") !== "off" });
      if (reason) {
        const refusal = pinRefusal(type, body, reason);
        if (scanner.replaceCurrentFrame(refusal.frame)) body = refusal.body;
      }
    }
    trackClientMessage(this.#state!, type, body);
    trackClientMessage(stateOf(server), type, body);
    if (this.#pool!.mode === "transaction") this.#trackNamedStatements(type, body);
  }

  /** Pooled: what the server says, for the client's state and the server's own. */
  #pooledServerMessage(type: number, body: Uint8Array): void {
    const server = this.#server;
    if (!server || !this.#state) return;
    trackServerMessage(this.#state, type, body);
    trackServerMessage(stateOf(server), type, body);
  }

  /**
   * A pooled client left while bound: an idle server with nothing outstanding goes back (session mode: after
   * the reset query); one inside a transaction or a query is closed, never lent in that state.
   */
  #returnServerOfLeavingClient(server: ServerConnection, vanished: boolean): void {
    const pool = this.#pool!;
    // A server that holds state of the client's (a LISTEN, a temp table, a session lock) is not lent again.
    const clean = server.open && server.facts.transactionStatus === "idle" && (this.#queries?.outstanding ?? 0) === 0 &&
      (pool.mode === "session" || (stateOf(server).pinned === null && !stateOf(server).overflowed && this.#namedStatements.size === 0));
    this.#toClient?.dispose();
    this.#toServer?.dispose();
    this.#toClient = undefined;
    this.#toServer = undefined;
    this.#cancelKey?.bind(null);
    this.#server = null;
    if (!clean) {
      if (vanished && (this.#queries?.outstanding ?? 0) > 0 && server.open) this.#cancelThenClose(server);
      pool.release(server, false);
      return;
    }
    if (pool.mode === "transaction" || pool.resetQuery === "") {
      pool.release(server, true);
      return;
    }
    runQuietly(server, pool.resetQuery, this.#settings.connectTimeoutMs).then(
      (refused) => pool.release(server, refused === undefined && server.facts.transactionStatus === "idle"),
      () => pool.release(server, false),
    );
  }

  /**
   * What relays this client's stream, made once per client: the scanner of its frames (requests timed,
   * audit, channel binding watched, Terminate kept from pooled servers) and the handlers of the frames of
   * whichever server it is bound to. Their handlers read the binding at the time of the frame.
   */
  #relayParts(): { frontend: FrameScanner; backendEvents: BackendEvents } {
    if (this.#parts) return this.#parts;
    const metrics = this.#host.metrics;
    const limits = { maxBodyBytes: this.#settings.maxMessageBytes };
    const timer = new QueryTimer((seconds) => metrics.queryFinished(seconds), () => metrics.queryTrackingOverflow());
    this.#queries = timer;
    this.context.queryTracking = timer;
    // Channel binding can only break where both legs are TLS sessions of pgrelay's: then the client's
    // SASL choice is read before it reaches the server.
    const watchBinding = this.context.clientTls === "terminated" && this.context.upstreamTls;
    // A plaintext client behind pgrelay's TLS to the server must not be offered -PLUS (libpq refuses it).
    const stripBinding = this.context.clientTls === "none" && this.context.upstreamTls;
    let offered: string[] = [];
    // With audit off the relay runs the same closures as without the feature: no captures, no calls.
    const audit = this.#audit;
    const pooled = this.#pool !== undefined;
    const captures = [
      ...(watchBinding ? [FRONTEND.PASSWORD] : []),
      ...(pooled ? POOLED_CAPTURES : []),
      ...(audit?.frontendCaptures ?? []),
    ];
    const frontend = new FrameScanner({
      frame: (type) => {
        this.context.framesFromClient++;
        metrics.frontendMessages[type]!++;
        timer.frontend(type);
        if (type === FRONTEND.TERMINATE) this.#endReason ??= "client_closed";
      },
      message: (type, body, truncated) => {
        if (pooled) this.#pooledClientMessage(frontend, type, body, truncated);
        if (type !== FRONTEND.PASSWORD) {
          if (type !== FRONTEND.TERMINATE) audit?.frontend(type, body, truncated);
          return;
        }
        if (offered.length === 0) return;
        const problem = channelBindingProblem(offered, body);
        offered = [];
        if (problem) this.#fail(problem, "channel_binding");
      },
    }, {
      ...limits,
      capture: captures,
      ...(audit ? { maxCapturedBytes: audit.frontendCaptureBytes } : {}),
      peer: "client",
    });
    const backendEvents: BackendEvents = {
      frame: audit
        ? (type) => {
          this.context.framesFromServer++;
          metrics.backendMessages[type]!++;
          timer.backend(type);
          audit.backendFrame(type);
        }
        : (type) => {
          this.context.framesFromServer++;
          metrics.backendMessages[type]!++;
          timer.backend(type);
        },
      ready: () => {
        this.context.phase = "ready";
        this.#handshakeDone();
        // After the chunk with ReadyForQuery is written: the client reads the FATAL as the session's end.
        if (this.#server && this.#server.placement.target !== "any") queueMicrotask(() => this.#checkServerRole());
      },
      transactionEnded: (kind) => metrics.transactionEnded(kind),
      saslMechanisms: (mechanisms) => {
        if (watchBinding) offered = mechanisms;
        else if (stripBinding && mechanisms.includes("SCRAM-SHA-256-PLUS")) {
          if (!this.#server!.scanner!.replaceCurrentFrame(saslOfferWithoutChannelBinding(mechanisms))) {
            this.#fail(PLAINTEXT_CLIENT_BINDING_ERROR, "channel_binding");
          }
        }
      },
      error: (fields, fatal) => this.#serverError(this.#server!, fields, fatal),
      backendKey: (processId, secretKey) => this.#issueCancelKey(this.#server!.scanner!, processId, secretKey),
    };
    if (audit) backendEvents.body = (type, body) => audit.backend(type, body);
    if (pooled) {
      backendEvents.readyForQuery = (status) => this.#pooledReady(status);
      const counted = backendEvents.frame;
      backendEvents.frame = (type) => {
        counted(type);
        if (type === BACKEND.EMPTY_QUERY_RESPONSE || type === BACKEND.PORTAL_SUSPENDED) this.#pooledServerMessage(type, NOTHING);
      };
      backendEvents.body = audit
        ? (type, body) => {
          audit.backend(type, body);
          this.#pooledServerMessage(type, body);
        }
        : (type, body) => this.#pooledServerMessage(type, body);
    }
    this.#parts = { frontend, backendEvents };
    return this.#parts;
  }

  /**
   * Binds the client to `server`: the context shows the server's facts, and two relay pumps connect the
   * client's socket and the server's (the server's stream is walked by the server connection's scanner).
   */
  #startPumps(server: ServerConnection, frontend: FrameScanner | null): void {
    this.#server = server;
    this.context.server = server.facts;
    const { toServer, toClient } = this.#pumpsTo(server, frontend);
    server.listen({
      data: (chunk) => toClient.forward(chunk),
      drain: () => toServer.drained(),
      close: (error) => this.#serverClosed(server, error),
    });
  }
  /** The two relay pumps between the client's socket and `server`'s (a malformed frame ends the session). */
  #pumpsTo(server: ServerConnection, frontend: FrameScanner | null): { toServer: RelayPump; toClient: RelayPump } {
    const toServer = new RelayPump(this.#client, server.socket, frontend, (error) => this.#fail(new ClientError({
      severity: "FATAL",
      code: error.sqlstate,
      message: error.message,
    }), "protocol_error"), this.context.fromClient);
    const toClient = new RelayPump(server.socket, this.#client, server.scanner, (error) => {
      this.#host.logger.log("warn", "upstream_protocol_error", {
        ...this.context.toJSON(),
        error: `pgrelay received a malformed message from upstream ${formatAddress(server.facts.address)}: ${error.message}`,
      });
      this.#fail(upstreamMalformed(this.context.id), "protocol_error");
    }, this.context.fromServer, this.#settings.bandwidthPerSession ?? 0);
    this.#toServer = toServer;
    this.#toClient = toClient;
    return { toServer, toClient };
  }


  /**
   * The server's BackendKeyData passes: the client gets a key of pgrelay's of the same length instead, bound
   * to this server connection, so a CancelRequest can only reach the server the client holds at that moment.
   */
  #issueCancelKey(scanner: FrameScanner, processId: number, secretKey: Uint8Array): void {
    const issue = this.#host.issueCancelKey;
    const address = this.#server?.facts.address;
    if (!issue || !address) return;
    const server: CancelableServer = { address, key: { processId, secretKey } };
    let key = this.#cancelKey;
    let error: ClientError | undefined;
    let reason: EndReason = "protocol_error";
    if (key && key.secretKey.length === secretKey.length) key.bind(server);
    else {
      key?.forget();
      key = undefined;
      try {
        key = issue(server, secretKey.length);
      } catch (caught) {
        if (!(caught instanceof RangeError)) throw caught;
        this.#host.logger.log("warn", "cancel_key_refused", { ...this.context.toJSON(), error: caught.message });
        const malformed = secretKey.length < 4 || secretKey.length > 256;
        if (!malformed) reason = "limited";
        error = malformed
          ? upstreamMalformed(this.context.id)
          : new ClientError({ severity: "FATAL", code: SQLSTATE.TOO_MANY_CONNECTIONS, message: "pgrelay has no cancel key left for this session" });
      }
      this.#cancelKey = key;
    }
    // The client never sees the server's key: without one of pgrelay's it gets zeros, then the session ends.
    const frame = backendKeyDataFrame(key ?? { processId: 0, secretKey: new Uint8Array(secretKey.length) });
    if (!scanner.replaceCurrentFrame(frame)) error ??= upstreamMalformed(this.context.id);
    if (error) this.#fail(error, reason);
  }

  #handshakeDone(): void {
    clearTimeout(this.#startupTimer);
    this.#startupTimer = undefined;
    this.#host.startupEnded?.(this);
    this.#reportOutcome("ok");
    this.#host.metrics.handshakeDone((performance.now() - this.#acceptedAt) / 1000);
    this.#host.logger.log("info", "session_ready", this.context.toJSON());
  }

  /**
   * The server's own word on its role (ParameterStatus in_hot_standby, default_transaction_read_only), as
   * libpq checks target_session_attrs: a host whose role changed since its last health check does not suit
   * the route's target, and the client is told to retry (57P03). A server that did not report the facts
   * (before PostgreSQL 14) is trusted on the health check's word.
   */
  #checkServerRole(): void {
    const server = this.#server;
    if (!server || this.#ended || this.#endReason !== undefined) return;
    const binding = server.placement;
    const accepts = targetAcceptsServer(binding.target, {
      inHotStandby: parseServerBoolean(server.facts.parameters.get("in_hot_standby")),
      defaultTransactionReadOnly: parseServerBoolean(server.facts.parameters.get("default_transaction_read_only")),
    });
    if (accepts !== false) return;
    this.#host.logger.log("warn", "wrong_server_role", { ...this.context.toJSON(), cluster: binding.cluster.settings.name, host: binding.host.address, target: binding.target });
    this.#fail(wrongServerRole(this.context.id, binding.cluster.settings.name, binding.target), "wrong_server_role");
  }

  #serverError(server: ServerConnection, fields: Map<string, string>, fatal: boolean): void {
    const code = fields.get("C") ?? "XX000";
    this.#host.metrics.serverError(code);
    if (!fatal) return;
    server.fatal = true;
    if (this.context.phase !== "ready") {
      const authFailed = code.startsWith("28");
      this.#reportOutcome(authFailed ? "auth_failed" : "server_rejected");
      if (authFailed) this.#audit?.authFailed(code, fields.get("M") ?? "");
    }
    this.#host.logger.log("info", "server_fatal", { ...this.context.toJSON(), sqlstate: code, message: fields.get("M") });
  }

  /** Counts the session's outcome once, as soon as it is known. */
  #reportOutcome(outcome: SessionOutcome): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = outcome;
    this.#host.metrics.sessionOutcome(outcome);
  }

  /**
   * One CancelRequest per connection: what follows it is ignored, and the connection closes once it is sent.
   * The key is pgrelay's: it goes, as the server's real key, to the server its client holds now (or, under
   * `--workers`, to the worker that issued it); an unknown or stale key is dropped, as PostgreSQL does.
   */
  #forwardCancel(processId: number, secretKey: Uint8Array): void {
    this.#endReason = "cancel_request";
    this.#reportOutcome("cancel_request");
    clearTimeout(this.#startupTimer);
    this.#ignoreClient();
    if (this.#host.admission?.admitCancel?.(this.context) === false) {
      this.#host.metrics.cancelRequest("rate_limited");
      this.#host.logger.log("warn", "cancel_rate_limited", { session: this.context.id, client: this.context.client.hostname });
      this.#closeClient();
      return;
    }
    const route = this.#host.cancelTarget(processId, secretKey);
    if (!route) {
      this.#host.metrics.cancelRequest("dropped");
      this.#host.logger.log("info", "cancel_dropped", { session: this.context.id, key_pid: processId, reason: "unknown or stale cancel key" });
      this.#closeClient();
      return;
    }
    this.#host.metrics.cancelRequest("forwarded");
    const target = route.address;
    const done = () => this.#closeClient();
    // A request another worker handed on is logged apart: the client's request was logged there.
    this.#host.logger.log("info", this.#host.cancelOnly ? "cancel_from_worker" : "cancel_request", {
      session: this.context.id,
      key_pid: processId,
      ...(route.worker === undefined ? {} : { to_worker: route.worker }),
      ...(route.backendPid === undefined ? {} : { backend_pid: route.backendPid }),
      upstream: formatAddress(target),
    });
    // The server answers a cancel by closing; the client learns the cancel was delivered from our close.
    // CancelRequest is sent in plaintext even to servers that use TLS, as libpq does.
    this.#host.connect(target, { timeoutMs: this.#settings.connectTimeoutMs }).then((server) => {
      server.listen({ data() {}, drain() {}, close: done });
      server.write(route.packet);
    }, (error: Error) => {
      this.#host.logger.log("warn", "cancel_failed", { session: this.context.id, error: error.message });
      done();
    });
  }

  #startupTimedOut(): void {
    if (this.context.phase === "ready" || this.context.phase === "passthrough" || this.#ended) return;
    this.#fail(new ClientError({
      severity: "FATAL",
      code: SQLSTATE.QUERY_CANCELED,
      message: `canceling startup: the connection was not ready within ${this.#settings.startupTimeoutMs} ms`,
      hint: "The client did not finish the startup handshake in time (pgrelay's startup_timeout).",
    }), "startup_timeout");
  }

  /**
   * Sends the client a FATAL error where it can read one (its stream sits on a frame boundary and is not
   * someone else's TLS session), then closes both legs. `hidden` is the real reason of a failure the client
   * must not learn (a mock SCRAM exchange): the log and the audit get it, the client gets `error`.
   */
  #fail(error: ClientError, reason: EndReason, hidden?: ClientError): void {
    this.#endReason ??= reason;
    if (reason === "protocol_error" || reason === "startup_timeout") this.#reportOutcome(reason);
    if (reason === "upstream_unreachable") this.#reportOutcome("upstream_error");
    if (reason === "tls_required" || reason === "channel_binding") this.#reportOutcome("denied");
    if (reason === "auth_failed") this.#reportOutcome("auth_failed");
    const readable = this.#clientOpen && !this.#clientClosing && this.#tlsHandshake === undefined &&
      this.context.clientTls !== "passthrough" && (this.#toClient?.atBoundary ?? true);
    const logged = hidden ?? error;
    this.#host.logger.log(reason === "shutdown" ? "info" : "warn", reason, {
      ...this.context.toJSON(),
      sqlstate: logged.code,
      message: logged.message,
      ...(hidden ? { hint: hidden.hint, mock_exchange: true, ...(readable ? { client_sqlstate: error.code, client_message: error.message } : {}) } : {}),
    });
    // A client that left mid-exchange has already ended the session, and its audit record with it.
    if (reason === "auth_failed" && !this.#ended) this.#audit?.authFailed(logged.code, logged.message);
    if (this.#clientOpen) {
      if (readable) this.#client.write(encodeErrorResponse(error));
      this.#closeClient();
    }
    if (this.#serverOpen) this.#server?.destroy();
  }

  /**
   * Ends the client leg: pgrelay reads nothing more (what still arrives is dropped, and a client that keeps
   * sending is cut off), flushes what it queued, and destroys the connection if the peer has not closed it
   * within CLOSE_GRACE_MS. During pgrelay's TLS handshake nothing can be flushed: the socket is destroyed.
   */
  #closeClient(): void {
    if (!this.#clientOpen || this.#clientClosing) return;
    this.#clientClosing = true;
    const handshake = this.#tlsHandshake;
    if (handshake) {
      // Its close goes to the TLS layer, which may never report it: the session ends here.
      handshake.destroy();
      this.#clientClosed();
      return;
    }
    const client = this.#client;
    let dropped = 0;
    client.listen({
      data: (chunk) => {
        dropped += chunk.length;
        if (dropped > CLOSE_DROP_BYTES) client.destroy();
      },
      drain() {},
      close: (error) => this.#clientClosed(error),
    });
    client.end();
    if (this.#clientOpen) this.#closeTimer = setTimeout(() => client.destroy(), CLOSE_GRACE_MS);
  }

  /** Stops reading the client for good (what arrives is dropped) while it stays open. */
  #ignoreClient(): void {
    this.#client.listen({ data() {}, drain() {}, close: (error) => this.#clientClosed(error) });
  }

  /** Takes the admission's slot; a slot held before (never expected) is released first, so none leaks. */
  #holdSlot(release: () => void): void {
    this.#releaseSlot();
    this.#slot = release;
  }

  #releaseSlot(): void {
    const release = this.#slot;
    this.#slot = undefined;
    release?.();
  }

  #clientClosed(error?: Error): void {
    if (!this.#clientOpen) return;
    this.#clientOpen = false;
    this.#cancelKey?.forget();
    // Neither a Terminate nor an error of pgrelay's came first: the client went away.
    const vanished = this.#endReason === undefined;
    this.#endReason ??= error ? "protocol_error" : "client_closed";
    if (error) this.#host.logger.log("debug", "client_socket_error", { session: this.context.id, error: error.message });
    if (this.#pool && this.#server) this.#returnServerOfLeavingClient(this.#server, vanished);
    else if (this.#serverOpen) {
      if (vanished && this.context.phase === "ready" && (this.#queries?.outstanding ?? 0) > 0) this.#cancelThenClose(this.#server!);
      else this.#server?.end();
    }
    this.#maybeEnded();
  }

  /**
   * The client left while a query or COPY runs. PostgreSQL notices a closed socket only at its next read or
   * write, so a long query would go on working for nobody: cancel it with the backend's key (as a
   * CancelRequest from the client would), then close the server connection.
   */
  #cancelThenClose(server: ServerConnection): void {
    const { backendPid, backendSecret, address: upstream } = server.facts;
    if (backendPid === undefined || backendSecret === undefined) {
      server.destroy();
      return;
    }
    this.#host.logger.log("info", "client_vanished", {
      session: this.context.id,
      backend_pid: backendPid,
      outstanding: this.#queries?.outstanding,
      action: "cancel_request",
    });
    const timeoutMs = this.#settings.connectTimeoutMs;
    // The server closes the cancel connection once it has signalled the backend; then the session's own goes.
    this.#host.connect(upstream, { timeoutMs }).then((cancel) => {
      const timer = setTimeout(() => cancel.destroy(), timeoutMs);
      cancel.listen({
        data() {},
        drain() {},
        close: () => {
          clearTimeout(timer);
          server.destroy();
        },
      });
      cancel.write(cancelRequest(backendPid, backendSecret));
    }, (error: Error) => {
      this.#host.logger.log("warn", "cancel_failed", { session: this.context.id, error: error.message });
      server.destroy();
    });
  }

  #serverClosed(server: ServerConnection, error?: Error): void {
    // The client holds no server now: a cancel with its key reaches nobody.
    this.#cancelKey?.bind(null);
    // Nobody ended the session and the server said no FATAL: it vanished (killed, reset, a relay between died).
    // In passthrough the Terminate and the FATAL are inside the client's TLS: a close tells nothing there.
    const lost = this.#endReason === undefined && !server.fatal && this.context.clientTls !== "passthrough";
    this.#endReason ??= "server_closed";
    if (error) this.#host.logger.log("debug", "server_socket_error", { session: this.context.id, error: error.message });
    if (lost) this.#serverLost(error);
    if (this.#clientOpen) this.#closeClient();
    this.#maybeEnded();
  }

  /**
   * Tells the client with FATAL 08006 that the server connection is gone, where it can read it: on a frame
   * boundary of its stream and not inside someone else's TLS session. Otherwise it just sees the close.
   */
  #serverLost(error?: Error): void {
    const told = this.#clientOpen && (this.#toClient?.atBoundary ?? false);
    this.#host.logger.log("warn", "server_lost", {
      ...this.context.toJSON(),
      error: error?.message ?? "the server closed the connection without an error message",
      client_told: told,
    });
    if (told) this.#client.write(encodeErrorResponse(upstreamLost(this.context.id)));
  }

  #maybeEnded(): void {
    if (this.#ended || this.#clientOpen || this.#serverOpen) return;
    this.#ended = true;
    this.#cancelKey?.forget();
    clearTimeout(this.#startupTimer);
    clearTimeout(this.#closeTimer);
    const context = this.context;
    // Left before the handshake finished, with no error of pgrelay's or the server's to explain it.
    this.#reportOutcome(this.#endReason === "server_closed" ? "server_rejected" : "client_aborted");
    context.phase = "closed";
    this.#toClient?.dispose();
    this.#toServer?.dispose();
    this.#releaseSlot();
    this.#audit?.ended(this.#endReason ?? "client_closed");
    this.#host.metrics.sessionEnded(context, (performance.now() - this.#acceptedAt) / 1000);
    this.#host.logger.log("info", "session_end", {
      ...context.toJSON(),
      reason: this.#endReason,
      duration_ms: Date.now() - context.startedAt,
    });
    this.#host.sessionEnded(this);
  }
}

/** The fields of a ClientError, to make another from (an Error's message is not an own enumerable field). */
const fieldsOf = (error: ClientError) => ({ severity: error.severity, code: error.code, message: error.message, detail: error.detail, hint: error.hint });

export function formatAddress(address: SocketAddress): string {
  return address.hostname.includes(":") ? `[${address.hostname}]:${address.port}` : `${address.hostname}:${address.port}`;
}
