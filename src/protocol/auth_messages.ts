/**
 * Encoders and decoders for the authentication messages pgrelay exchanges itself in `auth.mode: scram`.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html (AuthenticationSASL*, SASLInitialResponse, SASLResponse)
 */
import { AUTH, BACKEND, FRONTEND } from "./codes.ts";
import { encodeFrame as frame } from "./encode_frame.ts";
import { ProtocolError } from "./protocol_error.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();


function withCode(code: number, rest: Uint8Array): Uint8Array {
  const body = new Uint8Array(4 + rest.length);
  new DataView(body.buffer).setInt32(0, code);
  body.set(rest, 4);
  return body;
}

/** AuthenticationSASL: the mechanisms offered, each a C string, then an empty one. */
export function authenticationSasl(mechanisms: readonly string[]): Uint8Array {
  const names = encoder.encode(mechanisms.map((m) => `${m}\0`).join("") + "\0");
  return frame(BACKEND.AUTHENTICATION, withCode(AUTH.SASL, names));
}

export function authenticationSaslContinue(data: Uint8Array): Uint8Array {
  return frame(BACKEND.AUTHENTICATION, withCode(AUTH.SASL_CONTINUE, data));
}

export function authenticationSaslFinal(data: Uint8Array): Uint8Array {
  return frame(BACKEND.AUTHENTICATION, withCode(AUTH.SASL_FINAL, data));
}

/** SASLInitialResponse: mechanism, int32 length of the data, data. */
export function saslInitialResponse(mechanism: string, data: Uint8Array): Uint8Array {
  const name = encoder.encode(`${mechanism}\0`);
  const body = new Uint8Array(name.length + 4 + data.length);
  body.set(name);
  new DataView(body.buffer).setInt32(name.length, data.length);
  body.set(data, name.length + 4);
  return frame(FRONTEND.PASSWORD, body);
}

export function saslResponse(data: Uint8Array): Uint8Array {
  return frame(FRONTEND.PASSWORD, data);
}

export function decodeSaslInitialResponse(body: Uint8Array): { mechanism: string; data: Uint8Array } {
  const end = body.indexOf(0);
  if (end < 0 || body.length < end + 5) throw new ProtocolError("malformed SASLInitialResponse");
  const length = new DataView(body.buffer, body.byteOffset, body.byteLength).getInt32(end + 1);
  const data = body.subarray(end + 5);
  if (length !== data.length) throw new ProtocolError(`malformed SASLInitialResponse: data length ${length}, got ${data.length} bytes`);
  return { mechanism: decoder.decode(body.subarray(0, end)), data };
}

/** The subtype of an Authentication (`R`) body and what follows it. */
export function decodeAuthentication(body: Uint8Array): { code: number; data: Uint8Array } {
  if (body.length < 4) throw new ProtocolError("malformed Authentication message");
  return { code: new DataView(body.buffer, body.byteOffset, body.byteLength).getInt32(0), data: body.subarray(4) };
}
