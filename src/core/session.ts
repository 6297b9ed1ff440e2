/**
 * One client session: the startup phase that pgrelay must understand (SSLRequest, GSSENCRequest,
 * CancelRequest, StartupMessage), then two relay pumps that forward bytes untouched while the frame
 * scanners keep the session context current.
 */
import { FRONTEND } from "../protocol/codes.ts";
import { encodeErrorResponse, type ProxyError } from "../protocol/error_response.ts";
import { FrameScanner } from "../protocol/frame_scanner.ts";
import { ProtocolError } from "../protocol/protocol_error.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";
import { decodeStartupPacket } from "../protocol/startup.ts";
import { StartupReader } from "../protocol/startup_reader.ts";
import { BACKEND_CAPTURES, type BackendEvents, BackendObserver } from "./backend_observer.ts";
import type { Logger } from "./logger.ts";
import type { MetricsSink, SessionOutcome } from "./metrics_sink.ts";
import type { Admission, Auditor, SessionAudit } from "./session_hooks.ts";
import { QueryTimer } from "./query_timer.ts";
import { RelayPump } from "./relay_pump.ts";
import type { RelaySettings } from "./relay_settings.ts";
import { SessionContext } from "./session_context.ts";
import type { Connector, RelaySocket, SocketAddress } from "./socket.ts";

/** What a session needs from the proxy that owns it. */
export interface SessionHost {
  readonly connect: Connector;
  readonly logger: Logger;
  readonly metrics: MetricsSink;
  /** Decides whether a session may connect upstream (policy, limits); everyone may when absent. */
  readonly admission?: Admission | undefined;
  /** Observes sessions for the audit log; absent or returning undefined when audit is off. */
  readonly auditor?: Auditor | undefined;
  /** Where a CancelRequest for this backend key goes, when this proxy knows the session. */
  cancelTarget(processId: number, secretKey: Uint8Array): SocketAddress | undefined;
  /** The session ended; both sockets are closed or closing. */
  sessionEnded(session: Session): void;
}

export type EndReason =
  | "client_closed"
  | "server_closed"
  | "startup_timeout"
  | "protocol_error"
  | "upstream_unreachable"
  | "cancel_request"
  | "denied"
  | "limited"
  | "policy_revoked"
  | "shutdown";

/** `N`: the answer to SSLRequest and GSSENCRequest while pgrelay does not encrypt. */
const REFUSE_ENCRYPTION = new Uint8Array(["N".charCodeAt(0)]);

export class Session {
  readonly context: SessionContext;
  readonly #client: RelaySocket;
  readonly #host: SessionHost;
  readonly #settings: RelaySettings;
  readonly #reader = new StartupReader();
  #server: RelaySocket | undefined;
  #toServer: RelayPump | undefined;
  #toClient: RelayPump | undefined;
  #pendingClientBytes: Uint8Array | undefined;
  #startupTimer: ReturnType<typeof setTimeout> | undefined;
  #clientOpen = true;
  #serverOpen = false;
  #endReason: EndReason | undefined;
  #outcome: SessionOutcome | undefined;
  #ended = false;
  #release: (() => void) | undefined;
  #audit: SessionAudit | undefined;
  readonly #acceptedAt = performance.now();

  constructor(id: string, client: RelaySocket, settings: RelaySettings, host: SessionHost) {
    this.context = new SessionContext(id, client.remoteAddress);
    this.#client = client;
    this.#settings = settings;
    this.#host = host;
  }

  /** Bytes written to either socket that the operating system has not taken yet. */
  get bufferedBytes(): number {
    return this.#client.pendingBytes + (this.#server?.pendingBytes ?? 0);
  }

  start(): void {
    this.#host.metrics.sessionAccepted();
    this.#startupTimer = setTimeout(() => this.#startupTimedOut(), this.#settings.startupTimeoutMs);
    this.#client.listen({
      data: (chunk) => this.#toServer ? this.#toServer.forward(chunk) : this.#startupData(chunk),
      drain: () => this.#toClient?.drained(),
      close: (error) => this.#clientClosed(error),
    });
  }

  /** Ends the session from outside (shutdown): FATAL to the client where the stream allows it. */
  terminate(error: ProxyError, reason: EndReason = "shutdown"): void {
    this.#fail(error, reason);
  }

  #startupData(chunk: Uint8Array): void {
    if (this.context.phase !== "startup") {
      this.#holdEarlyClientBytes(chunk);
      return;
    }
    let rest = chunk;
    try {
      while (rest.length > 0) {
        const read = this.#reader.push(rest);
        if (read === null) return;
        rest = read.rest;
        const packet = decodeStartupPacket(read.packet);
        switch (packet.kind) {
          case "ssl_request":
          case "gssenc_request":
            this.#host.metrics.encryptionRequest(packet.kind === "ssl_request" ? "ssl" : "gssenc", "N");
            this.#client.write(REFUSE_ENCRYPTION);
            continue;
          case "cancel_request":
            this.#forwardCancel(read.packet, packet.processId, packet.secretKey);
            return;
          case "startup":
            this.context.user = packet.parameters.get("user") ?? "";
            this.context.database = packet.parameters.get("database") ?? this.context.user;
            this.context.applicationName = packet.parameters.get("application_name") ?? "";
            this.context.protocol = `${packet.major}.${packet.minor}`;
            if (!this.#admit()) return;
            if (rest.length > 0) this.#holdEarlyClientBytes(rest);
            void this.#connectUpstream(read.packet);
            return;
        }
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.#fail({ severity: "FATAL", code: error.sqlstate, message: error.message }, "protocol_error");
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
      this.#release = verdict.release;
      this.context.admittedBy = verdict.rule;
    }
    this.context.upstream = this.#settings.upstream;
    this.#audit = this.#host.auditor?.begin(this.context, this.context.admittedBy ?? "none");
    return true;
  }

  /** Bytes a client sends after its StartupMessage but before the upstream is connected. */
  #holdEarlyClientBytes(chunk: Uint8Array): void {
    const held = this.#pendingClientBytes?.length ?? 0;
    if (held + chunk.length > 65536) {
      this.#fail({
        severity: "FATAL",
        code: SQLSTATE.PROTOCOL_VIOLATION,
        message: "client sent more than 64 KiB before the server answered its startup message",
      }, "protocol_error");
      return;
    }
    const joined = new Uint8Array(held + chunk.length);
    if (this.#pendingClientBytes) joined.set(this.#pendingClientBytes);
    joined.set(chunk, held);
    this.#pendingClientBytes = joined;
  }

  async #connectUpstream(startupPacket: Uint8Array): Promise<void> {
    const upstream = this.#settings.upstream;
    this.context.phase = "connecting";
    this.context.upstream = upstream;
    this.#client.pause();
    let server: RelaySocket;
    try {
      server = await this.#host.connect(upstream, { timeoutMs: this.#settings.connectTimeoutMs });
    } catch (error) {
      this.#host.metrics.upstreamConnectFailed();
      this.#fail({
        severity: "FATAL",
        code: SQLSTATE.SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
        message: `pgrelay could not connect to upstream ${formatAddress(upstream)}: ${(error as Error).message}`,
        hint: "Check that the PostgreSQL server is running and that pgrelay's upstream setting points at it.",
      }, "upstream_unreachable");
      return;
    }
    if (!this.#clientOpen || this.#endReason !== undefined) {
      server.destroy();
      return;
    }
    this.context.phase = "authenticating";
    this.#server = server;
    this.#serverOpen = true;
    const limits = { maxBodyBytes: this.#settings.maxMessageBytes };
    const metrics = this.#host.metrics;
    const timer = new QueryTimer((seconds) => metrics.queryFinished(seconds));
    // With audit off the relay runs the same closures as without the feature: no captures, no calls.
    const audit = this.#audit;
    const frontend = new FrameScanner({
      frame: (type) => {
        this.context.framesFromClient++;
        metrics.frontendMessages[type]!++;
        timer.frontend(type);
        if (type === FRONTEND.TERMINATE) this.#endReason ??= "client_closed";
      },
      message: audit ? (type, body, truncated) => audit.frontend(type, body, truncated) : () => {},
    }, {
      ...limits,
      capture: audit?.frontendCaptures ?? [],
      ...(audit ? { maxCapturedBytes: audit.frontendCaptureBytes } : {}),
      peer: "client",
    });
    const backendEvents: BackendEvents = {
      frame: audit
        ? (type) => {
          metrics.backendMessages[type]!++;
          timer.backend(type);
          audit.backendFrame(type);
        }
        : (type) => {
          metrics.backendMessages[type]!++;
          timer.backend(type);
        },
      ready: () => this.#handshakeDone(),
      transactionEnded: (kind) => metrics.transactionEnded(kind),
      error: (fields, fatal) => this.#serverError(fields, fatal),
    };
    if (audit) backendEvents.body = (type, body) => audit.backend(type, body);
    const backend = new FrameScanner(
      new BackendObserver(this.context, backendEvents),
      { ...limits, capture: BACKEND_CAPTURES, peer: "server" },
    );
    const toServer = new RelayPump(this.#client, server, frontend, (error) => this.#fail({
      severity: "FATAL",
      code: error.sqlstate,
      message: error.message,
    }, "protocol_error"), this.context.fromClient);
    const toClient = new RelayPump(server, this.#client, backend, (error) => this.#fail({
      severity: "FATAL",
      code: SQLSTATE.PROTOCOL_VIOLATION,
      message: `pgrelay received a malformed message from upstream ${formatAddress(upstream)}: ${error.message}`,
    }, "protocol_error"), this.context.fromServer, this.#settings.bandwidthPerSession ?? 0);
    this.#toServer = toServer;
    this.#toClient = toClient;
    server.listen({
      data: (chunk) => toClient.forward(chunk),
      drain: () => toServer.drained(),
      close: (error) => this.#serverClosed(error),
    });
    if (!server.write(startupPacket)) toServer.stall();
    const early = this.#pendingClientBytes;
    this.#pendingClientBytes = undefined;
    if (early) toServer.forward(early);
    if (!toServer.stalled) this.#client.resume();
  }

  #handshakeDone(): void {
    clearTimeout(this.#startupTimer);
    this.#reportOutcome("ok");
    this.#host.metrics.handshakeDone((performance.now() - this.#acceptedAt) / 1000);
    this.#host.logger.log("info", "session_ready", this.context.toJSON());
  }

  #serverError(fields: Map<string, string>, fatal: boolean): void {
    const code = fields.get("C") ?? "XX000";
    this.#host.metrics.serverError(code);
    if (!fatal) return;
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

  #forwardCancel(packet: Uint8Array, processId: number, secretKey: Uint8Array): void {
    this.#endReason = "cancel_request";
    this.#reportOutcome("cancel_request");
    clearTimeout(this.#startupTimer);
    const target = this.#host.cancelTarget(processId, secretKey) ?? this.#settings.upstream;
    const done = () => this.#client.end();
    this.#host.logger.log("info", "cancel_request", {
      session: this.context.id,
      backend_pid: processId,
      upstream: formatAddress(target),
    });
    // The server answers a cancel by closing; the client learns the cancel was delivered from our close.
    this.#host.connect(target, { timeoutMs: this.#settings.connectTimeoutMs }).then((server) => {
      server.listen({ data() {}, drain() {}, close: done });
      server.write(packet);
    }, (error: Error) => {
      this.#host.logger.log("warn", "cancel_failed", { session: this.context.id, error: error.message });
      done();
    });
  }

  #startupTimedOut(): void {
    if (this.context.phase === "ready" || this.#ended) return;
    this.#fail({
      severity: "FATAL",
      code: SQLSTATE.QUERY_CANCELED,
      message: `canceling startup: the connection was not ready within ${this.#settings.startupTimeoutMs} ms`,
      hint: "The client did not finish the startup handshake in time (pgrelay's startup_timeout).",
    }, "startup_timeout");
  }

  /** Sends the client a FATAL error when its stream sits on a frame boundary, then closes both legs. */
  #fail(error: ProxyError, reason: EndReason): void {
    this.#endReason ??= reason;
    if (reason === "protocol_error" || reason === "startup_timeout") this.#reportOutcome(reason);
    if (reason === "upstream_unreachable") this.#reportOutcome("upstream_error");
    this.#host.logger.log(reason === "shutdown" ? "info" : "warn", reason, {
      ...this.context.toJSON(),
      sqlstate: error.code,
      message: error.message,
    });
    if (this.#clientOpen) {
      if (this.#toClient?.scanner.atBoundary ?? true) this.#client.write(encodeErrorResponse(error));
      this.#client.end();
    }
    if (this.#serverOpen) this.#server?.destroy();
  }

  #clientClosed(error?: Error): void {
    this.#clientOpen = false;
    this.#endReason ??= error ? "protocol_error" : "client_closed";
    if (error) this.#host.logger.log("debug", "client_socket_error", { session: this.context.id, error: error.message });
    if (this.#serverOpen) this.#server?.end();
    this.#maybeEnded();
  }

  #serverClosed(error?: Error): void {
    this.#serverOpen = false;
    this.#endReason ??= "server_closed";
    if (error) this.#host.logger.log("debug", "server_socket_error", { session: this.context.id, error: error.message });
    if (this.#clientOpen) this.#client.end();
    this.#maybeEnded();
  }

  #maybeEnded(): void {
    if (this.#ended || this.#clientOpen || this.#serverOpen) return;
    this.#ended = true;
    clearTimeout(this.#startupTimer);
    const context = this.context;
    // Left before the handshake finished, with no error of pgrelay's or the server's to explain it.
    this.#reportOutcome(this.#endReason === "server_closed" ? "server_rejected" : "client_aborted");
    context.phase = "closed";
    this.#toClient?.dispose();
    this.#release?.();
    this.#release = undefined;
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

export function formatAddress(address: SocketAddress): string {
  return address.hostname.includes(":") ? `[${address.hostname}]:${address.port}` : `${address.hostname}:${address.port}`;
}
