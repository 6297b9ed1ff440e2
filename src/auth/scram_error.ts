/**
 * Errors of a SCRAM exchange, worded like PostgreSQL's (src/backend/libpq/auth-scram.c) so clients see the
 * messages they would get from the server itself. https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { SQLSTATE, type SqlState } from "../protocol/sqlstate.ts";

/** Why pgrelay refuses a client's SCRAM exchange; send it as a FATAL ErrorResponse. */
export interface ScramError {
  /** SQLSTATE: 28P01 wrong password, 08P01 protocol violation, 0A000 unsupported feature. */
  code: SqlState;
  message: string;
  detail?: string;
}

/** PostgreSQL's "malformed SCRAM message" protocol violation with a detail. */
export function malformed(detail: string): ScramError {
  return { code: SQLSTATE.PROTOCOL_VIOLATION, message: "malformed SCRAM message", detail };
}

/** PostgreSQL's wording for a wrong password (proof that does not match StoredKey). */
export function passwordFailed(user: string): ScramError {
  return { code: SQLSTATE.INVALID_PASSWORD, message: `password authentication failed for user "${user}"` };
}
