/**
 * Why a client in transaction pooling mode keeps its server connection after its transaction ends:
 * session state that lives in that one server process and cannot be replayed on another.
 * Each reason is a label of `pgrelay_pool_pinned_total{reason}` and the `pinned` field of `/sessions`.
 */
import { ClientError } from "../protocol/client_error.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";

export const PIN_REASONS = {
  /** LISTEN: notifications go to the server process that listens. */
  listen: { statement: "LISTEN", until: "UNLISTEN * (or of every channel), DISCARD ALL" },
  /** pg_advisory_lock / pg_try_advisory_lock (and _shared): session locks belong to the process. */
  advisory_lock: {
    statement: "session-level advisory locks",
    until: "pg_advisory_unlock_all(), unlock of every lock taken, DISCARD ALL",
  },
  /** CREATE TEMP TABLE / SEQUENCE / VIEW, SELECT INTO TEMP, CREATE of an object in pg_temp. */
  temp_table: { statement: "temporary tables", until: "DROP of each, DISCARD TEMP, DISCARD ALL" },
  /** DECLARE ... WITH HOLD: the cursor outlives its transaction in the process. */
  with_hold_cursor: { statement: "DECLARE ... WITH HOLD", until: "CLOSE of each, CLOSE ALL, DISCARD ALL" },
  /** SQL-level PREPARE (the protocol's named statements are handled by the pool itself). */
  sql_prepare: { statement: "PREPARE", until: "DEALLOCATE of each, DEALLOCATE ALL, DISCARD ALL" },
  /** SET ROLE / SET SESSION AUTHORIZATION: the identity of the session. */
  set_role: {
    statement: "SET ROLE and SET SESSION AUTHORIZATION",
    until: "RESET ROLE, SET ROLE NONE, RESET SESSION AUTHORIZATION, DISCARD ALL",
  },
  /**
   * A Parse with a statement name (the extended protocol's prepared statements: pgbench -M prepared, npm
   * postgres, JDBC after 5 executions). Until pgrelay renames them per server (issue 11), the client keeps
   * the server that holds them, whatever on_pin says.
   */
  protocol_prepare: { statement: "named protocol-level prepared statements", until: "Close of each, DEALLOCATE ALL, DISCARD ALL" },
  /** LOAD: a shared library stays loaded in the process. */
  load: { statement: "LOAD", until: "the end of the session" },
} as const satisfies Record<string, { statement: string; until: string }>;

export type PinReason = keyof typeof PIN_REASONS;

/** The reasons in table order. */
export const PIN_REASON_NAMES = Object.keys(PIN_REASONS) as readonly PinReason[];

/**
 * The error a client gets with `on_pin: error` when a statement would pin it: SQLSTATE 0A000
 * (feature_not_supported), severity ERROR; the client stays connected.
 */
export function pinError(reason: PinReason): ClientError {
  const { statement } = PIN_REASONS[reason];
  return new ClientError({
    severity: "ERROR",
    code: SQLSTATE.FEATURE_NOT_SUPPORTED,
    message: `${statement} cannot be used in transaction pooling mode`,
    detail: `The state it creates would stay in one server connection (pin reason "${reason}").`,
    hint: "Use a route with pool mode session, or set on_pin: pin.",
  });
}
