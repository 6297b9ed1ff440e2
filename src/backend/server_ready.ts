/**
 * After pgrelay's own login to a server (auth.mode scram), reads the server's messages up to its first
 * ReadyForQuery (or an ErrorResponse), without forwarding them, so the server's role can be judged from its
 * ParameterStatus messages before the client is bound to it. The bytes are handed to the relay unchanged.
 */
import { BACKEND } from "../protocol/codes.ts";
import type { ServerFacts } from "../routing/target.ts";
import { parseServerBoolean } from "../routing/target.ts";
import type { RelaySocket } from "../core/socket.ts";

export interface ServerReady {
  /** Every byte read, from the first one given on: the relay forwards them as they are. */
  readonly bytes: Uint8Array;
  readonly facts: ServerFacts;
}

const decoder = new TextDecoder();

/** Reads from `server` (after `initial`) until a ReadyForQuery or ErrorResponse frame is complete; leaves it paused. */
export function readUntilReady(server: RelaySocket, initial: Uint8Array, timeoutMs: number, maxBytes = 1 << 20): Promise<ServerReady> {
  return new Promise((resolve, reject) => {
    let buffer = initial.slice();
    let scanned = 0;
    const parameters = new Map<string, string>();
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`the server sent no ReadyForQuery within ${timeoutMs} ms after login`)), timeoutMs);
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      server.pause();
      if (error) reject(error);
      else {
        resolve({
          bytes: buffer,
          facts: {
            inHotStandby: parseServerBoolean(parameters.get("in_hot_standby")),
            defaultTransactionReadOnly: parseServerBoolean(parameters.get("default_transaction_read_only")),
          },
        });
      }
    };
    /** Walks complete frames; true once one ends the wait. */
    const scan = (): boolean => {
      while (buffer.length - scanned >= 5) {
        const type = buffer[scanned]!;
        const length = new DataView(buffer.buffer, buffer.byteOffset + scanned + 1, 4).getInt32(0);
        if (length < 4) {
          finish(new Error(`the server sent a message of length ${length} after login`));
          return true;
        }
        const end = scanned + 1 + length;
        if (end > buffer.length) return false;
        if (type === BACKEND.PARAMETER_STATUS) {
          const body = buffer.subarray(scanned + 5, end);
          const nameEnd = body.indexOf(0);
          const valueEnd = body.indexOf(0, nameEnd + 1);
          if (nameEnd > 0 && valueEnd > nameEnd) {
            parameters.set(decoder.decode(body.subarray(0, nameEnd)), decoder.decode(body.subarray(nameEnd + 1, valueEnd)));
          }
        }
        scanned = end;
        if (type === BACKEND.READY_FOR_QUERY || type === BACKEND.ERROR_RESPONSE) {
          // Only what came before and with this frame is ours; what follows belongs to the relay too.
          finish();
          return true;
        }
      }
      return false;
    };
    if (scan()) return;
    server.listen({
      data: (chunk) => {
        if (settled) return;
        if (buffer.length + chunk.length > maxBytes) {
          finish(new Error(`the server sent more than ${maxBytes} bytes after login without ReadyForQuery`));
          return;
        }
        const joined = new Uint8Array(buffer.length + chunk.length);
        joined.set(buffer);
        joined.set(chunk, buffer.length);
        buffer = joined;
        scan();
      },
      drain() {},
      close: (error) => finish(new Error(`the server closed the connection after login${error ? `: ${error.message}` : ""}`)),
    });
    server.resume();
  });
}
