/** Parsing of PostgreSQL backend (server → client) messages. */

const decoder = new TextDecoder();

/** One backend message: its type letter and the payload after the length word. */
export interface BackendMessage {
  type: string;
  body: Uint8Array;
}

/** Result of {@link splitFrame}: the message and the offset just past it. */
export interface SplitFrame {
  message: BackendMessage;
  next: number;
}

/** Reads the frame starting at `offset`, or undefined if `bytes` does not yet hold all of it. */
export function splitFrame(bytes: Uint8Array, offset = 0): SplitFrame | undefined {
  if (bytes.length - offset < 5) return undefined;
  const length = readInt32(bytes, offset + 1);
  if (length < 4) throw new Error(`invalid backend frame length ${length} at offset ${offset}`);
  const end = offset + 1 + length;
  if (end > bytes.length) return undefined;
  const type = String.fromCharCode(bytes[offset] ?? 0);
  return { message: { type, body: bytes.slice(offset + 5, end) }, next: end };
}

/** Splits a complete backend byte stream into messages; throws on a trailing partial frame. */
export function parseBackendFrames(bytes: Uint8Array): BackendMessage[] {
  const messages: BackendMessage[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const frame = splitFrame(bytes, offset);
    if (frame === undefined) {
      throw new Error(
        `incomplete backend frame: ${bytes.length - offset} trailing bytes at offset ${offset}`,
      );
    }
    messages.push(frame.message);
    offset = frame.next;
  }
  return messages;
}

/** ErrorResponse/NoticeResponse fields keyed by code letter (S, V, C, M, D, H, ...). */
export function errorFields(body: Uint8Array): Record<string, string> {
  const fields: Record<string, string> = {};
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const code = String.fromCharCode(body[offset] ?? 0);
    const [value, next] = readCString(body, offset + 1);
    fields[code] = value;
    offset = next;
  }
  return fields;
}

/** DataRow ('D') column values as text (null for SQL NULL). */
export function dataRowValues(body: Uint8Array): (string | null)[] {
  const count = readInt16(body, 0);
  const values: (string | null)[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const length = readInt32(body, offset);
    offset += 4;
    if (length < 0) {
      values.push(null);
    } else {
      values.push(decoder.decode(body.subarray(offset, offset + length)));
      offset += length;
    }
  }
  return values;
}

/** CommandComplete ('C') tag, e.g. "SELECT 1". */
export function commandTag(body: Uint8Array): string {
  return readCString(body, 0)[0];
}

/** Authentication ('R') request code (0 ok, 3 cleartext, 5 md5, 10 SASL, 11 continue, 12 final). */
export function authCode(body: Uint8Array): number {
  return readInt32(body, 0);
}

/** ParameterStatus ('S') name and value. */
export function parameterStatus(body: Uint8Array): [name: string, value: string] {
  const [name, next] = readCString(body, 0);
  return [name, readCString(body, next)[0]];
}

/** Big-endian signed 32-bit integer at `offset`. */
export function readInt32(bytes: Uint8Array, offset: number): number {
  if (offset + 4 > bytes.length) throw new Error(`int32 at ${offset} beyond ${bytes.length} bytes`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt32(offset);
}

/** Big-endian signed 16-bit integer at `offset`. */
export function readInt16(bytes: Uint8Array, offset: number): number {
  if (offset + 2 > bytes.length) throw new Error(`int16 at ${offset} beyond ${bytes.length} bytes`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt16(offset);
}

/** NUL-terminated UTF-8 string at `offset` and the offset after its terminator. */
export function readCString(bytes: Uint8Array, offset: number): [value: string, next: number] {
  const end = bytes.indexOf(0, offset);
  if (end < 0) throw new Error(`unterminated string at offset ${offset}`);
  return [decoder.decode(bytes.subarray(offset, end)), end + 1];
}

/** Mechanism names in an AuthenticationSASL body, after its int32 code. */
export function saslMechanisms(data: Uint8Array): string[] {
  const names: string[] = [];
  let at = 0;
  while (at < data.length && data[at] !== 0) {
    const [name, next] = readCString(data, at);
    names.push(name);
    at = next;
  }
  return names;
}
