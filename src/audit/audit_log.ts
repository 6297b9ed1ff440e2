/**
 * The audit log: JSON lines for `session_start`, `query`, `auth_failed`, `denied` and `session_end`, each
 * with `ts`, `event`, `session` and `client`. It implements the core's Auditor interface and never blocks
 * the relay: lines wait in a bounded queue while one write is in flight; when the queue is full, events are
 * dropped and counted (`pgrelay_audit_events_dropped_total`).
 */
import type { MetricsSink } from "../core/metrics_sink.ts";
import type { AdmissionVerdict, Auditor, SessionAudit } from "../core/session_hooks.ts";
import type { SessionContext } from "../core/session_context.ts";
import type { AuditSettings } from "./audit_schema.ts";
import type { AuditWriter } from "./audit_writer.ts";
import { QUERY_CAPTURES, type QueryEvent, QueryTracker } from "./query_tracker.ts";
import { redactLiterals } from "./redact.ts";
import { MAX_CAPTURED_BODY_BYTES } from "../protocol/limits.ts";

export interface AuditLogOptions {
  metrics?: MetricsSink;
  /** Lines held while the writer is busy; beyond this, events are dropped (default 10000). */
  maxQueuedEvents?: number;
  /** Told once per failed write (the lines of that write count as dropped). */
  onWriteError?: (error: Error) => void;
}

const address = (context: SessionContext) =>
  context.client.hostname.includes(":")
    ? `[${context.client.hostname}]:${context.client.port}`
    : `${context.client.hostname}:${context.client.port}`;

/** A batch is written once it holds this many characters... */
const FLUSH_CHARS = 64 * 1024;
/** ...or this long after its first line. */
const FLUSH_DELAY_MS = 20;

export class AuditLog implements Auditor {
  #settings: AuditSettings | undefined;
  #writer: AuditWriter | undefined;
  readonly #metrics: MetricsSink | undefined;
  readonly #maxQueued: number;
  readonly #onWriteError: ((error: Error) => void) | undefined;
  #queue: string[] = [];
  #queuedChars = 0;
  #writing: Promise<void> | undefined;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #dropped = 0;
  #written = 0;

  constructor(
    settings: AuditSettings | undefined,
    writer: AuditWriter | undefined,
    options: AuditLogOptions = {},
  ) {
    this.#settings = settings;
    this.#writer = writer;
    this.#metrics = options.metrics;
    this.#maxQueued = options.maxQueuedEvents ?? 10_000;
    this.#onWriteError = options.onWriteError;
  }

  /** Events dropped because the writer could not keep up (or failed). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Events handed to the writer. */
  get written(): number {
    return this.#written;
  }

  get settings(): AuditSettings | undefined {
    return this.#settings;
  }

  /** New settings and writer (reload); undefined settings turn audit off for new sessions. */
  configure(settings: AuditSettings | undefined, writer: AuditWriter | undefined): void {
    this.#settings = settings;
    this.#writer = writer;
  }

  /** Resolves once every queued line was handed to the writer. */
  async flush(): Promise<void> {
    this.#startPump();
    while (this.#writing) await this.#writing;
  }

  begin(context: SessionContext, rule: string): SessionAudit | undefined {
    const settings = this.#settings;
    if (!settings) return undefined;
    this.#record("session_start", context, {
      user: context.user,
      database: context.database,
      application_name: context.applicationName,
      tls: context.tls,
      upstream: context.upstream ? `${context.upstream.hostname}:${context.upstream.port}` : undefined,
      protocol: context.protocol,
      decision: "allow",
      rule,
    });
    const startedAt = performance.now();
    // Redaction shortens text (literals become ?), so more is kept to be cut after redacting.
    const keep = settings.redactLiterals ? settings.maxQueryLength * 4 : settings.maxQueryLength;
    const tracker = settings.queries
      ? new QueryTracker((event) => this.#record("query", context, this.#queryFields(event, settings)), keep)
      : undefined;
    return {
      frontendCaptures: tracker ? QUERY_CAPTURES : [],
      // Enough UTF-8 for max_query_length characters plus the statement name; Bind bodies stop there too.
      frontendCaptureBytes: Math.min(MAX_CAPTURED_BODY_BYTES, keep * 4 + 256),
      frontend: (type, body, truncated) => tracker?.frontend(type, body, truncated),
      backendFrame: (type) => tracker?.backendFrame(type),
      backend: (type, body) => tracker?.backend(type, body),
      authFailed: (sqlstate, message) =>
        this.#record("auth_failed", context, {
          user: context.user,
          database: context.database,
          sqlstate,
          message,
        }),
      ended: (reason) =>
        this.#record("session_end", context, {
          user: context.user,
          database: context.database,
          reason,
          duration_ms: Math.round(performance.now() - startedAt),
          bytes_from_client: context.fromClient.bytes,
          bytes_from_server: context.fromServer.bytes,
          queries: tracker?.count,
        }),
    };
  }

  refused(context: SessionContext, verdict: AdmissionVerdict & { allowed: false }): void {
    if (!this.#settings) return;
    this.#record("denied", context, {
      user: context.user,
      database: context.database,
      application_name: context.applicationName,
      tls: context.tls,
      decision: "deny",
      kind: verdict.kind,
      rule: verdict.rule,
      sqlstate: verdict.error.code,
      message: verdict.error.message,
    });
  }

  /** An audit event from outside a session's own flow (e.g. `revoked` on a policy reload). */
  record(event: string, context: SessionContext, fields: Record<string, unknown>): void {
    if (this.#settings) this.#record(event, context, fields);
  }

  #queryFields(event: QueryEvent, settings: AuditSettings): QueryEvent {
    let text = settings.redactLiterals ? redactLiterals(event.text) : event.text;
    if (text.length > settings.maxQueryLength) {
      text = text.slice(0, settings.maxQueryLength);
      event.text_truncated = true;
    }
    event.text = text;
    return event;
  }

  #record(event: string, context: SessionContext, fields: object): void {
    // Audit was turned off by a reload: the sessions begun before it end without a trace, and that is no drop.
    if (!this.#writer) return;
    if (this.#queue.length >= this.#maxQueued) {
      this.#drop(1);
      return;
    }
    const line = JSON.stringify({
      ts: new Date().toISOString(),
      event,
      session: context.id,
      client: address(context),
      ...fields,
    });
    this.#queue.push(line);
    this.#queuedChars += line.length;
    // Lines go out in batches: a write per line costs more than the line itself (each is an async file
    // write through the runtime), so the queue is written when it holds FLUSH_CHARS or FLUSH_DELAY_MS after
    // its first line, whichever comes first. A write in progress takes the queue with it when it ends.
    if (this.#writing) return;
    if (this.#queuedChars >= FLUSH_CHARS) this.#startPump();
    else this.#flushTimer ??= setTimeout(() => this.#startPump(), FLUSH_DELAY_MS);
  }

  #startPump(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#queue.length > 0) this.#writing ??= this.#pump();
  }

  async #pump(): Promise<void> {
    // Resolved first so a record() made during this call queues behind this write instead of recursing.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      const lines = this.#queue;
      this.#queue = [];
      this.#queuedChars = 0;
      const writer = this.#writer;
      try {
        if (!writer) throw new Error("audit log has no writer");
        await writer.write(lines.join("\n") + "\n");
        this.#written += lines.length;
      } catch (error) {
        this.#drop(lines.length);
        this.#onWriteError?.(error as Error);
      }
    }
    this.#writing = undefined;
  }

  #drop(count: number): void {
    this.#dropped += count;
    this.#metrics?.auditEventsDropped(count);
  }
}
