/**
 * The untyped packets a client sends first: SSLRequest, GSSENCRequest, CancelRequest and StartupMessage.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html (StartupMessage, SSLRequest, ...)
 */
import { STARTUP_CODE } from "./codes.ts";
import { MAX_STARTUP_PACKET_BYTES } from "./limits.ts";
import { ProtocolError } from "./protocol_error.ts";
import { SQLSTATE } from "./sqlstate.ts";

export type StartupPacket =
  | { kind: "ssl_request" }
  | { kind: "gssenc_request" }
  | { kind: "cancel_request"; processId: number; secretKey: Uint8Array }
  | {
    kind: "startup";
    major: number;
    minor: number;
    /** By name; a repeated name keeps its last value. */
    parameters: Map<string, string>;
    /** In packet order, repeats included: what `startupFacts` reads, as the server does. */
    pairs: Array<[string, string]>;
  };

const decoder = new TextDecoder("utf-8", { fatal: false });

/**
 * Reads the length word of a startup-phase packet from its first 4 bytes, validating it before any
 * allocation: PostgreSQL's own bounds (at least 8, at most 10000 bytes).
 */
export function startupPacketLength(header: Uint8Array): number {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const length = view.getInt32(0);
  if (length < 8 || length > MAX_STARTUP_PACKET_BYTES) {
    throw new ProtocolError(
      `invalid length of startup packet: ${length} bytes (allowed 8 to ${MAX_STARTUP_PACKET_BYTES})`,
    );
  }
  return length;
}

/** Decodes one complete startup-phase packet, length word included. */
export function decodeStartupPacket(packet: Uint8Array): StartupPacket {
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const code = view.getInt32(4);
  switch (code) {
    case STARTUP_CODE.SSL_REQUEST:
      return { kind: "ssl_request" };
    case STARTUP_CODE.GSSENC_REQUEST:
      return { kind: "gssenc_request" };
    case STARTUP_CODE.CANCEL_REQUEST:
      if (packet.length < 16) throw new ProtocolError(`invalid length of cancel request: ${packet.length} bytes`);
      return { kind: "cancel_request", processId: view.getInt32(8), secretKey: packet.subarray(12) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    throw new ProtocolError(`unsupported frontend protocol ${major}.${minor}: pgrelay supports protocol 3`, {
      sqlstate: SQLSTATE.FEATURE_NOT_SUPPORTED,
    });
  }
  const pairs = decodeParameters(packet.subarray(8));
  return { kind: "startup", major, minor, parameters: new Map(pairs), pairs };
}

/** Parses the `key\0value\0 ... \0` list of a StartupMessage the way the server does. */
function decodeParameters(bytes: Uint8Array): Array<[string, string]> {
  const parameters: Array<[string, string]> = [];
  const terminated = bytes[bytes.length - 1] === 0;
  let at = 0;
  while (terminated && at < bytes.length && bytes[at] !== 0) {
    const keyEnd = bytes.indexOf(0, at);
    if (keyEnd + 1 >= bytes.length) break;
    const valueEnd = bytes.indexOf(0, keyEnd + 1);
    parameters.push([decoder.decode(bytes.subarray(at, keyEnd)), decoder.decode(bytes.subarray(keyEnd + 1, valueEnd))]);
    at = valueEnd + 1;
  }
  if (!terminated || at !== bytes.length - 1) {
    throw new ProtocolError("invalid startup packet layout: expected terminator as last byte");
  }
  return parameters;
}
