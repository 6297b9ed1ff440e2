/**
 * The audit log: JSON lines for `session_start`, `query`, `auth_failed`, `denied` and `session_end`, each
 * with `ts`, `event`, `session` and `client`. It implements the core's Auditor interface and never blocks
 * the relay: lines wait in a bounded queue while one write is in flight; when the queue is full, events are
 * dropped and counted (`pgrelay_audit_events_dropped_total`). On the relay's path the frames of queries are
 * only noted (FrameJournal); they are read and turned into lines in batches, every FLUSH_DELAY_MS.
 */
import type { MetricsSink } from "../core/metrics_sink.ts";
import type { AdmissionVerdict, Auditor, SessionAudit } from "../core/session_hooks.ts";
import type { SessionContext } from "../core/session_context.ts";
import type { AuditSettings } from "./audit_schema.ts";
import type { AuditWriter } from "./audit_writer.ts";
import {
  FUNCTION_CALL_READ_BYTES,
  QUERY_CAPTURES,
  type QueryEvent,
  QueryTracker,
  TRACKED_BACKEND_BODIES,
  TRACKED_BACKEND_FRAMES,
} from "./query_tracker.ts";
import { redactLiterals } from "./redact.ts";
import { eventLine, queryLine, sessionMembers } from "./audit_line.ts";
import { LineBuffer } from "./line_buffer.ts";
import { FrameJournal } from "./frame_journal.ts";
import { FRONTEND } from "../protocol/codes.ts";
import { MAX_CAPTURED_BODY_BYTES } from "../protocol/limits.ts";

export interface AuditLogOptions {
  metrics?: MetricsSink;
  /** Lines held while the writer is busy; beyond this, events are dropped (default 10000). */
  maxQueuedEvents?: number;
  /** Bytes of lines held while the writer is busy; beyond this, events are dropped (default 16 MiB). */
  maxQueuedBytes?: number;
  /** Told once per failed write (the lines of that write count as dropped). */
  onWriteError?: (error: Error) => void;
}

const address = (context: SessionContext) =>
  context.client.hostname.includes(":")
    ? `[${context.client.hostname}]:${context.client.port}`
    : `${context.client.hostname}:${context.client.port}`;

/** A batch is written once it holds this many bytes... */
const FLUSH_BYTES = 64 * 1024;
/** ...or this long after its first line. */
const FLUSH_DELAY_MS = 20;

export class AuditLog implements Auditor {
  #settings: AuditSettings | undefined;
  #writer: AuditWriter | undefined;
  readonly #metrics: MetricsSink | undefined;
  readonly #maxQueued: number;
  readonly #maxQueuedBytes: number;
  readonly #onWriteError: ((error: Error) => void) | undefined;
  readonly #queue = new LineBuffer();
  /** Frames noted on the relay's path, read into the query trackers when the batch is written. */
  readonly #journal = new FrameJournal(() => this.#armTimer());
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
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024;
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
    this.#journal.replay(); // queries noted so far go to the writer they were noted for
    this.#settings = settings;
    this.#writer = writer;
  }

  /** Resolves once every queued line was handed to the writer. */
  async flush(): Promise<void> {
    this.#journal.replay();
    this.#startPump();
    while (this.#writing) await this.#writing;
  }

  begin(context: SessionContext, rule: string): SessionAudit | undefined {
    const settings = this.#settings;
    if (!settings) return undefined;
    const members = sessionMembers(context.id, address(context));
    this.#record("session_start", context, {
      user: context.user,
      database: context.database,
      application_name: context.applicationName,
      replication: context.replication,
      tls: context.tls,
      upstream: context.upstream ? `${context.upstream.hostname}:${context.upstream.port}` : undefined,
      protocol: context.protocol,
      decision: "allow",
      rule,
    });
    const startedAt = performance.now();
    // Redaction shortens text (literals become ?), so more is kept to be cut after redacting.
    const keep = settings.redactLiterals ? settings.maxQueryLength * 4 : settings.maxQueryLength;
    // How the server reads string literals: by the session's standard_conforming_strings (ParameterStatus).
    // Lines are made in batches, a little after the frames, so once the session has had it off a query may
    // have been read either way, and redaction masks what either reading takes for a literal.
    let hadNonStandardStrings = false;
    const lexing = (): boolean | "either" => {
      hadNonStandardStrings ||= context.parameters.get("standard_conforming_strings") === "off";
      return hadNonStandardStrings ? "either" : true;
    };
    const tracker = settings.queries
      ? new QueryTracker(
        (event) => this.#enqueue(queryLine(members, this.#queryFields(event, settings, lexing()), this.#journal.wallClock())),
        keep,
        this.#journal.now,
        { overflowed: (what) => this.#metrics?.auditTrackingOverflow(what) },
      )
      : undefined;
    context.auditTracking = tracker;
    const journal = this.#journal;
    return {
      frontendCaptures: tracker ? QUERY_CAPTURES : [],
      // Enough UTF-8 for max_query_length characters plus the statement name; Bind bodies stop there too.
      frontendCaptureBytes: Math.min(MAX_CAPTURED_BODY_BYTES, keep * 4 + 256),
      frontend: (type, body, truncated) => {
        if (!tracker) return;
        // Of a FunctionCall only the function's OID is noted; its arguments never leave the relay's buffer.
        if (type === FRONTEND.FUNCTION_CALL) journal.frontend(tracker, type, body.subarray(0, FUNCTION_CALL_READ_BYTES), false);
        else journal.frontend(tracker, type, body, truncated);
      },
      backendFrame: (type) => {
        if (tracker && TRACKED_BACKEND_FRAMES[type] === 1) journal.backendFrame(tracker, type);
      },
      backend: (type, body) => {
        if (tracker && TRACKED_BACKEND_BODIES[type] === 1) journal.backend(tracker, type, body);
      },
      authFailed: (sqlstate, message) =>
        this.#record("auth_failed", context, {
          user: context.user,
          database: context.database,
          sqlstate,
          message,
        }),
      ended: (reason) => {
        journal.replay(); // so `queries` counts the session's last ones
        this.#record("session_end", context, {
          user: context.user,
          database: context.database,
          reason,
          duration_ms: Math.round(performance.now() - startedAt),
          bytes_from_client: context.fromClient.bytes,
          bytes_from_server: context.fromServer.bytes,
          queries: tracker?.count,
        });
      },
    };
  }

  refused(context: SessionContext, verdict: AdmissionVerdict & { allowed: false }): void {
    if (!this.#settings) return;
    this.#record("denied", context, {
      user: context.user,
      database: context.database,
      application_name: context.applicationName,
      replication: context.replication,
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

  #queryFields(event: QueryEvent, settings: AuditSettings, standardConformingStrings: boolean | "either"): QueryEvent {
    if (event.text === undefined) return event;
    let text = settings.redactLiterals ? redactLiterals(event.text, { standardConformingStrings }) : event.text;
    if (text.length > settings.maxQueryLength) {
      text = text.slice(0, settings.maxQueryLength);
      event.text_truncated = true;
    }
    event.text = text;
    return event;
  }

  #record(event: string, context: SessionContext, fields: object): void {
    // Queries noted before this event are written before it (and counted in a session_end).
    this.#journal.replay();
    this.#enqueue(eventLine(event, sessionMembers(context.id, address(context)), fields));
  }

  #enqueue(line: string): void {
    // Audit was turned off by a reload: the sessions begun before it end without a trace, and that is no drop.
    if (!this.#writer) return;
    if (this.#queue.lines >= this.#maxQueued || this.#queue.bytes >= this.#maxQueuedBytes) {
      this.#drop(1);
      return;
    }
    this.#queue.append(line);
    // Lines go out in batches: a write per line costs more than the line itself (each is an async file
    // write through the runtime), so the queue is written when it holds FLUSH_BYTES or FLUSH_DELAY_MS after
    // its first line, whichever comes first. A write in progress takes the queue with it when it ends.
    if (this.#writing) return;
    if (this.#queue.bytes >= FLUSH_BYTES) this.#startPump();
    else this.#armTimer();
  }

  /** Makes sure noted frames and queued lines go out within FLUSH_DELAY_MS. */
  #armTimer(): void {
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      this.#journal.replay();
      this.#startPump();
    }, FLUSH_DELAY_MS);
  }

  #startPump(): void {
    if (this.#journal.size === 0) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    if (this.#queue.lines > 0) this.#writing ??= this.#pump();
  }

  async #pump(): Promise<void> {
    // Resolved first so a record() made during this call queues behind this write instead of recursing.
    await Promise.resolve();
    while (this.#queue.lines > 0) {
      const batch = this.#queue.take();
      const writer = this.#writer;
      try {
        if (!writer) throw new Error("audit log has no writer");
        await writer.write(batch.chunks);
        this.#written += batch.lines;
      } catch (error) {
        this.#drop(batch.lines);
        this.#onWriteError?.(error as Error);
      }
      this.#queue.recycle(batch.chunks);
    }
    this.#writing = undefined;
  }

  #drop(count: number): void {
    this.#dropped += count;
    this.#metrics?.auditEventsDropped(count);
  }
}
