/** C strings inside message bodies: NUL-terminated UTF-8. Private to src/protocol. */
import { ProtocolError } from "./protocol_error.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The index of the NUL that ends the C string starting at `at`; throws ProtocolError when there is none. */
export function cstringEnd(body: Uint8Array, at: number, message: string): number {
  const end = body.indexOf(0, at);
  if (end < 0) throw new ProtocolError(`malformed ${message}: unterminated string`);
  return end;
}

export function decodeText(body: Uint8Array, start: number, end: number): string {
  return decoder.decode(body.subarray(start, end));
}

/** `text` as UTF-8 followed by a NUL. */
export function encodeCString(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Writes a frame header (type byte, int32 length counting itself) at the start of `frame`. */
export function writeHeader(frame: Uint8Array, type: number, bodyLength: number): void {
  const length = bodyLength + 4;
  frame[0] = type;
  frame[1] = (length >>> 24) & 255;
  frame[2] = (length >>> 16) & 255;
  frame[3] = (length >>> 8) & 255;
  frame[4] = length & 255;
}
