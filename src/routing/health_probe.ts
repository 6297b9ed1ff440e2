/**
 * The health check's query and the reading of its answer. One round trip, valid on a primary and on a
 * standby alike (functions that fail during recovery are only reached on a primary, through CASE):
 * - `in_recovery`: `pg_is_in_recovery()`: true on a standby;
 * - `lsn`: a primary's `pg_current_wal_lsn()`, a standby's `pg_last_wal_replay_lsn()`;
 * - `walfile`: a primary's `pg_walfile_name(pg_current_wal_lsn())`, whose first 8 hex digits are its current
 *   timeline (it changes at promotion; `pg_control_checkpoint().timeline_id` lags until the next checkpoint);
 * - `received_tli`: a standby's `pg_stat_wal_receiver.received_tli` (NULL when no WAL receiver runs).
 * A standby's lag in bytes is the primary's `lsn` minus its own ({@link lagBytes}), compared by the cluster.
 */
import type { HealthCheckResult } from "./host_state.ts";

/** The columns of {@link HEALTH_QUERY}, in order. */
export const HEALTH_COLUMNS = ["in_recovery", "lsn", "walfile", "received_tli"] as const;

/** Sent as a simple Query; answers one row of {@link HEALTH_COLUMNS}. */
export const HEALTH_QUERY = "SELECT r AS in_recovery," +
  " CASE WHEN r THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn," +
  " CASE WHEN r THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS walfile," +
  " CASE WHEN r THEN (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1) END AS received_tli" +
  " FROM (SELECT pg_is_in_recovery() AS r OFFSET 0) AS recovery";

/** An answer the health check cannot read: the host fails the check with this message. */
export class HealthProbeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "HealthProbeError";
  }
}

/**
 * Reads the text values of the query's DataRow (null for SQL NULL) into a check result. Throws
 * HealthProbeError when a value is missing or malformed.
 */
export function parseHealthRow(values: readonly (string | null)[]): HealthCheckResult {
  if (values.length !== HEALTH_COLUMNS.length) {
    throw new HealthProbeError(
      `health check answered ${values.length} columns, expected ${HEALTH_COLUMNS.length}`,
    );
  }
  const [inRecovery, lsnText, walfile, receivedTli] = values;
  if (inRecovery !== "t" && inRecovery !== "f") {
    throw new HealthProbeError(`health check: pg_is_in_recovery() answered ${JSON.stringify(inRecovery)}`);
  }
  const standby = inRecovery === "t";
  const lsn = lsnText === null || lsnText === undefined ? undefined : parseLsn(lsnText);
  if (!standby && lsn === undefined) {
    throw new HealthProbeError("health check: a primary reported no WAL position");
  }
  let timeline: number | undefined;
  if (standby) {
    if (receivedTli !== null && receivedTli !== undefined) {
      if (!/^\d{1,10}$/.test(receivedTli)) {
        throw new HealthProbeError(
          `health check: received_tli ${JSON.stringify(receivedTli)} is not a timeline`,
        );
      }
      timeline = Number(receivedTli);
    }
  } else {
    if (walfile === null || walfile === undefined) {
      throw new HealthProbeError("health check: a primary reported no WAL file");
    }
    timeline = timelineOfWalFile(walfile);
  }
  return { role: standby ? "standby" : "primary", lsn, timeline };
}

/** `16/B374D848` → 0x16_B374D848n. Throws HealthProbeError when it is not an LSN. */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) {
    throw new HealthProbeError(`health check: ${JSON.stringify(text)} is not an LSN such as 16/B374D848`);
  }
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** The timeline of a WAL segment file name (`000000020000000000000003` → 2): its first 8 hex digits. */
export function timelineOfWalFile(name: string): number {
  if (!/^[0-9A-Fa-f]{24}$/.test(name)) {
    throw new HealthProbeError(`health check: ${JSON.stringify(name)} is not a WAL file name`);
  }
  return parseInt(name.slice(0, 8), 16);
}

/** How far `standby` is behind `primary` in bytes (0 when it is ahead, as a standby briefly can appear). */
export function lagBytes(primaryLsn: bigint, standbyLsn: bigint): bigint {
  const lag = primaryLsn - standbyLsn;
  return lag > 0n ? lag : 0n;
}
