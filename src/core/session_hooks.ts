/**
 * The two decision and observation points a session offers to feature modules (policy and limits, audit),
 * as interfaces the core is handed. The core never imports src/policy, src/limits or src/audit.
 */
import { ClientError } from "../protocol/client_error.ts";
import type { SessionContext } from "./session_context.ts";

/** The verdict on a new session, taken after its StartupMessage and before any upstream connection. */
export type AdmissionVerdict =
  | {
    readonly allowed: true;
    /** What decided: a policy rule's name, `rules[N]`, or `default`. */
    readonly rule: string;
    /** Called once when the admitted session ends (frees its connection-limit slots). */
    release(): void;
  }
  | {
    readonly allowed: false;
    /** `denied` by policy, or `limited` by a connection limit or the connect rate. */
    readonly kind: "denied" | "limited";
    readonly rule: string;
    readonly error: ClientError;
  };

export interface Admission {
  /** Decides on a session from its context (user, database, application_name, client address, tls). */
  admit(context: SessionContext): AdmissionVerdict;
  /** Whether a CancelRequest from this client may be forwarded upstream (the cancel rate per source). */
  admitCancel?(context: SessionContext): boolean;
}

/** Per-session audit observer; the session calls it only when audit is on. */
export interface SessionAudit {
  /** Frontend type bytes whose bodies `frontend` wants (empty when query logging is off). */
  readonly frontendCaptures: readonly number[];
  /** Bytes of each captured frontend body to hand over (the rest is skipped, not copied). */
  readonly frontendCaptureBytes: number;
  frontend(type: number, body: Uint8Array, truncated: boolean): void;
  /** Every backend frame header. */
  backendFrame(type: number): void;
  /** Captured backend bodies (CommandComplete, ErrorResponse, ReadyForQuery, ...). */
  backend(type: number, body: Uint8Array): void;
  /** The server refused the login (a FATAL 28xxx before the first ReadyForQuery). */
  authFailed(sqlstate: string, message: string): void;
  ended(reason: string): void;
}

export interface Auditor {
  /** An admitted session; returns its observer, or undefined when audit is off. */
  begin(context: SessionContext, rule: string): SessionAudit | undefined;
  /** A session refused by admission. */
  refused(context: SessionContext, verdict: AdmissionVerdict & { allowed: false }): void;
}
