/**
 * ErrorResponse (`E`) frames that pgrelay sends itself, and a reader for the fields of the server's.
 * https://www.postgresql.org/docs/current/protocol-error-fields.html
 */
import { BACKEND } from "./codes.ts";
import type { ErrorFields } from "./client_error.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a complete ErrorResponse frame: type byte, length and the S, V, C, M, D, H fields. */
export function encodeErrorResponse(error: ErrorFields): Uint8Array {
  const fields: Array<[string, string]> = [
    ["S", error.severity],
    ["V", error.severity],
    ["C", error.code],
    ["M", error.message],
  ];
  if (error.detail !== undefined) fields.push(["D", error.detail]);
  if (error.hint !== undefined) fields.push(["H", error.hint]);
  const encoded = fields.map(([code, value]) => [code.charCodeAt(0), encoder.encode(value)] as const);
  const bodyLength = encoded.reduce((sum, [, value]) => sum + 1 + value.length + 1, 0) + 1;
  const frame = new Uint8Array(1 + 4 + bodyLength);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  frame[0] = BACKEND.ERROR_RESPONSE;
  view.setInt32(1, 4 + bodyLength);
  let at = 5;
  for (const [code, value] of encoded) {
    frame[at++] = code;
    frame.set(value, at);
    at += value.length;
    frame[at++] = 0;
  }
  frame[at] = 0;
  return frame;
}

/** Reads the fields of an ErrorResponse or NoticeResponse body (without type and length) by field code. */
export function decodeErrorFields(body: Uint8Array): Map<string, string> {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < body.length) {
    const code = body[at];
    if (code === undefined || code === 0) break;
    const end = body.indexOf(0, at + 1);
    if (end < 0) break;
    fields.set(String.fromCharCode(code), decoder.decode(body.subarray(at + 1, end)));
    at = end + 1;
  }
  return fields;
}
