/**
 * Parse (`P`, frontend): `String statement name, String query, Int16 n, Int32 × n parameter type OIDs`.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARSE
 */
import { FRONTEND } from "./codes.ts";
import { cstringEnd, decodeText, encodeCString, writeHeader } from "./_cstring.ts";
import { ProtocolError } from "./protocol_error.ts";

export interface ParseMessage {
  /** The prepared statement's name; "" is the unnamed statement. */
  statement: string;
  query: string;
  /** Parameter type OIDs the client specified (0 = unspecified). */
  parameterTypes: number[];
}

/** Where the statement name of a Parse body ends (the index of its NUL). */
export function parseStatementEnd(body: Uint8Array): number {
  return cstringEnd(body, 0, "Parse");
}

/** Checks a Parse body and decodes it (the body is the frame after its 5-byte header). */
export function decodeParse(body: Uint8Array): ParseMessage {
  const nameEnd = parseStatementEnd(body);
  const queryEnd = cstringEnd(body, nameEnd + 1, "Parse");
  let at = queryEnd + 1;
  if (at + 2 > body.length) throw new ProtocolError("malformed Parse: no parameter count");
  const count = (body[at]! << 8) | body[at + 1]!;
  at += 2;
  if (at + 4 * count !== body.length) throw new ProtocolError(`malformed Parse: ${count} parameter types in ${body.length - at} bytes`);
  const parameterTypes: number[] = [];
  for (let i = 0; i < count; i++, at += 4) {
    parameterTypes.push(((body[at]! << 24) | (body[at + 1]! << 16) | (body[at + 2]! << 8) | body[at + 3]!) >>> 0);
  }
  return { statement: decodeText(body, 0, nameEnd), query: decodeText(body, nameEnd + 1, queryEnd), parameterTypes };
}

/** A whole Parse frame. */
export function encodeParse(statement: string, query: string, parameterTypes: readonly number[] = []): Uint8Array {
  const name = encodeCString(statement);
  const text = encodeCString(query);
  const rest = new Uint8Array(text.length + 2 + 4 * parameterTypes.length);
  rest.set(text);
  let at = text.length;
  rest[at++] = (parameterTypes.length >> 8) & 255;
  rest[at++] = parameterTypes.length & 255;
  for (const oid of parameterTypes) {
    rest[at++] = (oid >>> 24) & 255;
    rest[at++] = (oid >>> 16) & 255;
    rest[at++] = (oid >>> 8) & 255;
    rest[at++] = oid & 255;
  }
  return renameParse(rest, name);
}

/**
 * A Parse frame named `statement` (a C string, NUL included) whose query and parameter types are `rest`
 * (a Parse body from just after its statement name).
 */
export function renameParse(rest: Uint8Array, statement: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + statement.length + rest.length);
  writeHeader(frame, FRONTEND.PARSE, statement.length + rest.length);
  frame.set(statement, 5);
  frame.set(rest, 5 + statement.length);
  return frame;
}
