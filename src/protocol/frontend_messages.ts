/**
 * The few frontend messages pgrelay sends as a client itself (auth.query, pooled servers): StartupMessage,
 * Query, PasswordMessage, Parse, Bind, Execute, Sync, Terminate. https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { FRONTEND, STARTUP_CODE } from "./codes.ts";
import { encodeFrame } from "./encode_frame.ts";

const encoder = new TextEncoder();


const cstring = (text: string) => encoder.encode(`${text}\0`);
const int16 = (n: number) => new Uint8Array([(n >> 8) & 255, n & 255]);
const int32 = (n: number) => new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

export function startupMessage(parameters: Record<string, string>): Uint8Array {
  const body = encoder.encode(Object.entries(parameters).map(([k, v]) => `${k}\0${v}\0`).join("") + "\0");
  const out = new Uint8Array(8 + body.length);
  const view = new DataView(out.buffer);
  view.setInt32(0, out.length);
  view.setInt32(4, STARTUP_CODE.PROTOCOL_3_0);
  out.set(body, 8);
  return out;
}

/** A simple Query. */
export const query = (sql: string) => encodeFrame(FRONTEND.QUERY, cstring(sql));
export const passwordMessage = (password: string) => encodeFrame(FRONTEND.PASSWORD, cstring(password));
export const parse = (sql: string) => encodeFrame(FRONTEND.PARSE, cstring(""), cstring(sql), int16(0));

/** Bind to the unnamed statement with text parameters (null for SQL NULL), text results. */
export function bind(parameters: ReadonlyArray<string | null>): Uint8Array {
  const values = parameters.flatMap((p) => p === null ? [int32(-1)] : [int32(encoder.encode(p).length), encoder.encode(p)]);
  return encodeFrame(FRONTEND.BIND, cstring(""), cstring(""), int16(0), int16(parameters.length), ...values, int16(0));
}

export const execute = () => encodeFrame(FRONTEND.EXECUTE, cstring(""), int32(0));
export const sync = () => encodeFrame(FRONTEND.SYNC);
export const terminate = () => encodeFrame(FRONTEND.TERMINATE);

/**
 * CancelRequest for the backend `processId`; `secretKey` as BackendKeyData gave it (4 bytes in protocol
 * 3.0, up to 256 in 3.2). https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CANCELREQUEST
 */
export function cancelRequest(processId: number, secretKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + secretKey.length);
  const view = new DataView(out.buffer);
  view.setInt32(0, out.length);
  view.setInt32(4, STARTUP_CODE.CANCEL_REQUEST);
  view.setInt32(8, processId);
  out.set(secretKey, 12);
  return out;
}
