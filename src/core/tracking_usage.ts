/**
 * How much a session's request tracking holds (the query timer, the audit's query tracker): for tests, and
 * to show that what a client sends cannot grow it past its caps.
 */
export interface TrackingUsage {
  /** Entries held now (requests awaiting their answer, statements, portals). */
  readonly entries: number;
  /** The most entries held at once in this session. */
  readonly peakEntries: number;
  /** Bytes held now, as the tracker counts them against its budget. */
  readonly bytes: number;
  /** The most bytes held at once in this session. */
  readonly peakBytes: number;
}

/** Requests a session may have unanswered before pgrelay stops timing (and auditing) the next ones. */
export const MAX_TRACKED_REQUESTS = 1024;
