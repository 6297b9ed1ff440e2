/**
 * The session's side of pgrelay-issued cancel keys (src/routing/cancel_keys.ts): what a key is bound to,
 * where a CancelRequest goes, and the BackendKeyData frame the client sees instead of the server's.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BACKENDKEYDATA
 */
import { BACKEND } from "../protocol/codes.ts";
import type { BackendKey, IssuedCancelKey } from "../routing/cancel_keys.ts";
import type { SocketAddress } from "./socket.ts";

/** A server connection as the cancel registry sees it: where it is and its real key. */
export interface CancelableServer {
  readonly address: SocketAddress;
  readonly key: BackendKey;
}

/** The key a client holds: bound to the server connection its session uses now. */
export type ClientCancelKey = IssuedCancelKey<CancelableServer>;

/**
 * Where a CancelRequest goes and what is sent there: the bound server and its real key, or (`--workers`)
 * the loopback cancel listener of the worker that issued the key, with the request as the client sent it.
 */
export interface CancelRoute {
  readonly address: SocketAddress;
  readonly packet: Uint8Array;
  /** The worker the request is handed to, when it is not this one's. */
  readonly worker?: number;
  /** The server's real pid, when the key resolved here. */
  readonly backendPid?: number;
}

/** A BackendKeyData frame carrying `key`. */
export function backendKeyDataFrame(key: BackendKey): Uint8Array {
  const body = new Uint8Array(4 + key.secretKey.length);
  new DataView(body.buffer).setInt32(0, key.processId);
  body.set(key.secretKey, 4);
  const frame = new Uint8Array(5 + body.length);
  frame[0] = BACKEND.BACKEND_KEY_DATA;
  new DataView(frame.buffer).setInt32(1, 4 + body.length);
  frame.set(body, 5);
  return frame;
}
