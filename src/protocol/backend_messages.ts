/**
 * The few backend messages pgrelay writes to a client itself, when a pooled session's startup is answered
 * from a server connection that logged in earlier: AuthenticationOk, ParameterStatus, ReadyForQuery,
 * NegotiateProtocolVersion.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { AUTH, BACKEND } from "./codes.ts";
import { encodeFrame } from "./encode_frame.ts";

const encoder = new TextEncoder();

export const authenticationOk = () => encodeFrame(BACKEND.AUTHENTICATION, new Uint8Array([0, 0, 0, AUTH.OK]));

export const parameterStatus = (name: string, value: string) => encodeFrame(BACKEND.PARAMETER_STATUS, encoder.encode(`${name}\0${value}\0`));

/** ReadyForQuery with a transaction status byte: `I` idle, `T` in a transaction block, `E` failed. */
export const readyForQuery = (status: "I" | "T" | "E") => encodeFrame(BACKEND.READY_FOR_QUERY, new Uint8Array([status.charCodeAt(0)]));

/**
 * NegotiateProtocolVersion: the newest minor version of protocol 3 pgrelay speaks here, and the `_pq_.`
 * options it does not recognise.
 */
export function negotiateProtocolVersion(minor: number, unrecognised: readonly string[]): Uint8Array {
  const names = encoder.encode(unrecognised.map((name) => `${name}\0`).join(""));
  const body = new Uint8Array(8 + names.length);
  const view = new DataView(body.buffer);
  view.setInt32(0, minor);
  view.setInt32(4, unrecognised.length);
  body.set(names, 8);
  return encodeFrame(BACKEND.NEGOTIATE_PROTOCOL_VERSION, body);
}
