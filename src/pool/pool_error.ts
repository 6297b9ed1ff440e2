/**
 * Why a pool could not lend a server connection: a ClientError the client is sent as it is. Severity ERROR
 * (the default here): the client stays connected and may retry.
 */
import { ClientError, type Severity } from "../protocol/client_error.ts";
import { SQLSTATE, type SqlState } from "../protocol/sqlstate.ts";

export class PoolError extends ClientError {
  constructor(code: SqlState, message: string, options: { severity?: Severity; hint?: string } = {}) {
    super({ severity: options.severity ?? "ERROR", code, message, hint: options.hint });
    this.name = "PoolError";
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
