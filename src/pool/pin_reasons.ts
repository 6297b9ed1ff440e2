/**
 * Session state a transaction-mode pool cannot move between server connections: the client is pinned to its
 * server (or gets 0A000 with `on_pin: error`) while it lasts. These are the `reason` label values of
 * `pgrelay_pool_pinned_total` and the `pinned` field of `/sessions`.
 */
export const PIN_REASONS = [
  "listen", // LISTEN (until UNLISTEN *)
  "advisory_lock", // session-level pg_advisory_lock (until unlocked)
  "temp_table", // CREATE TEMP TABLE without ON COMMIT DROP
  "with_hold_cursor", // DECLARE ... WITH HOLD
  "sql_prepare", // SQL-level PREPARE (until DEALLOCATE)
  "set_role", // SET ROLE / SET SESSION AUTHORIZATION
  "load", // LOAD 'library'
] as const;

export type PinReason = typeof PIN_REASONS[number];
