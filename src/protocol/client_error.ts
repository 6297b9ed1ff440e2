/**
 * An error pgrelay itself sends a client as an ErrorResponse: thrown and caught like any `Error`, it carries
 * the fields the client sees (severity, SQLSTATE, message, detail, hint). Errors from the server are never
 * turned into one: their frames pass through untouched.
 * https://www.postgresql.org/docs/current/protocol-error-fields.html
 */
import type { SqlState } from "./sqlstate.ts";

export type Severity = "FATAL" | "ERROR";

/** The fields of an ErrorResponse pgrelay writes. */
export interface ErrorFields {
  readonly severity: Severity;
  readonly code: SqlState;
  readonly message: string;
  readonly detail?: string | undefined;
  readonly hint?: string | undefined;
}

export class ClientError extends Error implements ErrorFields {
  readonly severity: Severity;
  readonly code: SqlState;
  readonly detail: string | undefined;
  readonly hint: string | undefined;

  constructor(fields: ErrorFields) {
    super(fields.message);
    this.name = "ClientError";
    this.severity = fields.severity;
    this.code = fields.code;
    this.detail = fields.detail;
    this.hint = fields.hint;
  }
}
