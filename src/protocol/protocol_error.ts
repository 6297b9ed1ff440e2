import { SQLSTATE, type SqlState } from "./sqlstate.ts";

/**
 * A peer broke the protocol. Carries the SQLSTATE to send the client and, for the frame scanner, the offset
 * in the chunk where the bad frame starts, so the complete frames before it can still be delivered.
 */
export class ProtocolError extends Error {
  readonly sqlstate: SqlState;
  readonly offset: number;

  constructor(message: string, options: { sqlstate?: SqlState; offset?: number } = {}) {
    super(message);
    this.name = "ProtocolError";
    this.sqlstate = options.sqlstate ?? SQLSTATE.PROTOCOL_VIOLATION;
    this.offset = options.offset ?? 0;
  }
}
