/**
 * What pgrelay learns from a server's frames: authentication outcome, ParameterStatus, BackendKeyData,
 * ReadyForQuery status and errors. The facts go to the server connection's ServerFacts; the events go to
 * the client session bound to it now (`events` is swapped when the binding changes). Reads only the
 * captured bodies handed over by the scanner.
 */
import { AUTH, BACKEND, type TransactionStatus, transactionStatusName } from "../protocol/codes.ts";
import { decodeErrorFields } from "../protocol/error_response.ts";
import type { FrameObserver } from "../protocol/frame_scanner.ts";
import type { ServerFacts } from "./server_facts.ts";

export const BACKEND_CAPTURES = [
  BACKEND.AUTHENTICATION,
  BACKEND.PARAMETER_STATUS,
  BACKEND.BACKEND_KEY_DATA,
  BACKEND.READY_FOR_QUERY,
  BACKEND.ERROR_RESPONSE,
  BACKEND.COMMAND_COMPLETE,
] as const;

export interface BackendEvents {
  /** Every frame header from the server. */
  frame(type: number): void;
  /** The first ReadyForQuery: the handshake is over. */
  ready(): void;
  /** ReadyForQuery went from a transaction block back to idle. */
  transactionEnded(kind: "commit" | "rollback"): void;
  /** Every ReadyForQuery, with the transaction status it reports (only pooled sessions listen). */
  readyForQuery?: (status: TransactionStatus) => void;
  /** AuthenticationSASL: the mechanisms the server offers. */
  saslMechanisms(mechanisms: string[]): void;
  /** An ErrorResponse; `fatal` when its severity is FATAL or PANIC. */
  error(fields: Map<string, string>, fatal: boolean): void;
  /**
   * BackendKeyData, after the server's real key is recorded on the context: the session may replace the
   * frame with a key of pgrelay's (absent: the server's key reaches the client).
   */
  backendKey?: (processId: number, secretKey: Uint8Array) => void;
  /** Every captured body, before it is read here (the audit log's hook; absent when audit is off). */
  body?: (type: number, body: Uint8Array) => void;
}

const decoder = new TextDecoder();

/**
 * ParameterStatus names and values repeat across sessions ("client_encoding", "UTF8", "ISO, MDY", the server
 * version): each distinct one is kept once for all sessions, up to INTERNED_LIMIT of them, so an idle
 * session does not hold its own copy of each.
 */
const INTERNED_LIMIT = 1024;
const INTERNED_MAX_LENGTH = 64;
const interned = new Map<string, string>();

function intern(text: string): string {
  if (text.length > INTERNED_MAX_LENGTH) return text;
  const known = interned.get(text);
  if (known !== undefined) return known;
  if (interned.size < INTERNED_LIMIT) interned.set(text, text);
  return text;
}
const ROLLBACK_TAG = new TextEncoder().encode("ROLLBACK");

/** Reads a big-endian int32 without allocating a DataView (this runs for every ReadyForQuery). */
const int32 = (bytes: Uint8Array, at: number) =>
  (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;

/** True when `bytes` begins with `prefix` and goes on (a tag is followed by at least its terminator). */
function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length <= prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

export class BackendObserver implements FrameObserver {
  readonly #facts: ServerFacts;
  /** The handlers of the client session bound to the server now. */
  events: BackendEvents;
  #lastTagWasRollback = false;

  constructor(facts: ServerFacts, events: BackendEvents) {
    this.#facts = facts;
    this.events = events;
  }

  frame(type: number): void {
    this.events.frame(type);
  }

  message(type: number, body: Uint8Array): void {
    this.events.body?.(type, body);
    const context = this.#facts;
    switch (type) {
      case BACKEND.AUTHENTICATION:
        if (body.length < 4) break;
        if (int32(body, 0) === AUTH.SASL) {
          this.events.saslMechanisms(decoder.decode(body.subarray(4)).split("\0").filter((m) => m !== ""));
        }
        break;
      case BACKEND.PARAMETER_STATUS: {
        const nameEnd = body.indexOf(0);
        const valueEnd = body.indexOf(0, nameEnd + 1);
        if (nameEnd > 0 && valueEnd > nameEnd) {
          context.parameters.set(
            intern(decoder.decode(body.subarray(0, nameEnd))),
            intern(decoder.decode(body.subarray(nameEnd + 1, valueEnd))),
          );
        }
        break;
      }
      case BACKEND.BACKEND_KEY_DATA:
        if (body.length >= 8) {
          context.backendPid = int32(body, 0);
          context.backendSecret = body.slice(4);
          this.events.backendKey?.(context.backendPid, context.backendSecret);
        }
        break;
      case BACKEND.COMMAND_COMPLETE:
        this.#lastTagWasRollback = startsWith(body, ROLLBACK_TAG);
        break;
      case BACKEND.READY_FOR_QUERY: {
        const previous = context.transactionStatus;
        context.transactionStatus = transactionStatusName(body[0]);
        if (context.transactionStatus === "idle" && (previous === "in_transaction" || previous === "failed")) {
          this.events.transactionEnded(previous === "failed" || this.#lastTagWasRollback ? "rollback" : "commit");
        }
        this.#lastTagWasRollback = false;
        this.events.readyForQuery?.(context.transactionStatus);
        if (!context.ready) {
          context.ready = true;
          this.events.ready();
        }
        break;
      }
      case BACKEND.ERROR_RESPONSE: {
        const fields = decodeErrorFields(body);
        const severity = fields.get("V") ?? fields.get("S") ?? "";
        this.events.error(fields, severity === "FATAL" || severity === "PANIC");
        break;
      }
    }
  }
}
