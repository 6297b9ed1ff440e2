/** The body shared by Describe and Close: `Byte1 'S' or 'P', String name`. Private to src/protocol. */
import { cstringEnd, decodeText, encodeCString, writeHeader } from "./_cstring.ts";
import { ProtocolError } from "./protocol_error.ts";

/** What a Describe or Close names. */
export const TARGET = {
  STATEMENT: 0x53, // S
  PORTAL: 0x50, // P
} as const;

export interface Target {
  kind: typeof TARGET[keyof typeof TARGET];
  name: string;
}

export function decodeTarget(body: Uint8Array, message: string): Target {
  const kind = body[0];
  if (kind !== TARGET.STATEMENT && kind !== TARGET.PORTAL) throw new ProtocolError(`malformed ${message}: invalid target ${kind ?? "(none)"}`);
  const end = cstringEnd(body, 1, message);
  if (end !== body.length - 1) throw new ProtocolError(`malformed ${message}: ${body.length - 1 - end} bytes after the name`);
  return { kind, name: decodeText(body, 1, end) };
}

export function encodeTarget(type: number, kind: number, name: string | Uint8Array): Uint8Array {
  const cstring = typeof name === "string" ? encodeCString(name) : name;
  const frame = new Uint8Array(6 + cstring.length);
  writeHeader(frame, type, 1 + cstring.length);
  frame[5] = kind;
  frame.set(cstring, 6);
  return frame;
}
