/**
 * Close (`C`, frontend): `Byte1 'S' (statement) or 'P' (portal), String name`.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CLOSE
 */
import { FRONTEND } from "./codes.ts";
import { encodeTarget, decodeTarget, type Target } from "./_target.ts";

export function decodeClose(body: Uint8Array): Target {
  return decodeTarget(body, "Close");
}

/** A whole Close frame; `name` is a string or a C string (NUL included). */
export function encodeClose(kind: number, name: string | Uint8Array): Uint8Array {
  return encodeTarget(FRONTEND.CLOSE, kind, name);
}
