/**
 * Describe (`D`, frontend): `Byte1 'S' (statement) or 'P' (portal), String name`.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-DESCRIBE
 */
import { FRONTEND } from "./codes.ts";
import { encodeTarget, decodeTarget, type Target } from "./_target.ts";

export type { Target } from "./_target.ts";
export { TARGET } from "./_target.ts";

export function decodeDescribe(body: Uint8Array): Target {
  return decodeTarget(body, "Describe");
}

/** A whole Describe frame; `name` is a string or a C string (NUL included). */
export function encodeDescribe(kind: number, name: string | Uint8Array): Uint8Array {
  return encodeTarget(FRONTEND.DESCRIBE, kind, name);
}
