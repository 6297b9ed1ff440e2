/**
 * CloseComplete (`3`, backend): no body.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CLOSECOMPLETE
 */
import { BACKEND } from "./codes.ts";

/** The whole CloseComplete frame. Shared: never write to it. */
export const CLOSE_COMPLETE_FRAME: Uint8Array = Uint8Array.of(BACKEND.CLOSE_COMPLETE, 0, 0, 0, 4);

export function encodeCloseComplete(): Uint8Array {
  return CLOSE_COMPLETE_FRAME.slice();
}
