/**
 * Why a pool could not lend a server connection, as an Error carrying the SQLSTATE, severity and hint the
 * client is sent (`toProxyError()`). Severity ERROR: the client stays connected and may retry.
 */
import type { ProxyError, Severity } from "../protocol/error_response.ts";
import { SQLSTATE, type SqlState } from "../protocol/sqlstate.ts";

export class PoolError extends Error {
  readonly severity: Severity;
  readonly code: SqlState;
  readonly hint: string | undefined;

  constructor(code: SqlState, message: string, options: { severity?: Severity; hint?: string } = {}) {
    super(message);
    this.name = "PoolError";
    this.code = code;
    this.severity = options.severity ?? "ERROR";
    this.hint = options.hint;
  }

  /** The ErrorResponse fields to send the client. */
  toProxyError(): ProxyError {
    const error: ProxyError = { severity: this.severity, code: this.code, message: this.message };
    if (this.hint !== undefined) error.hint = this.hint;
    return error;
  }
}

const seconds = (ms: number) => `${Math.round(ms) / 1000}s`;

/** A client waited wait_timeout for a server connection (53300; PgBouncer would close it with 08P01). */
export const waitTimedOut = (waitTimeoutMs: number): PoolError =>
  new PoolError(
    SQLSTATE.TOO_MANY_CONNECTIONS,
    `no server connection became free within the pool's wait_timeout (${seconds(waitTimeoutMs)})`,
    {
      hint:
        "Every server connection of the pool is busy. Retry the transaction, or raise pool.size or pool.wait_timeout.",
    },
  );

/** max_waiting clients already wait: the next one is refused at once (53300). */
export const tooManyWaiting = (maxWaiting: number): PoolError =>
  new PoolError(
    SQLSTATE.TOO_MANY_CONNECTIONS,
    `too many clients are waiting for a server connection of this pool (max_waiting ${maxWaiting})`,
    { hint: "Retry later, or raise pool.max_waiting or pool.size." },
  );

/** The pool was closed (config reload, shutdown) or emptied (its host went down) while the client waited. */
export const poolClosed = (why: string): PoolError =>
  new PoolError(SQLSTATE.CANNOT_CONNECT_NOW, `the server connection pool was ${why}`, {
    hint: "Retry the transaction.",
  });
