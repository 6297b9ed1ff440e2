/**
 * ParseComplete (`1`, backend): no body.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARSECOMPLETE
 */
import { BACKEND } from "./codes.ts";

/** The whole ParseComplete frame. Shared: never write to it. */
export const PARSE_COMPLETE_FRAME: Uint8Array = Uint8Array.of(BACKEND.PARSE_COMPLETE, 0, 0, 0, 4);

export function encodeParseComplete(): Uint8Array {
  return PARSE_COMPLETE_FRAME.slice();
}
