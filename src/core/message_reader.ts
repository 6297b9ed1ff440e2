/**
 * Reads whole typed messages from a socket, one at a time, for the short exchanges pgrelay conducts
 * itself (SCRAM with the client and with the server). Bodies are copied: these messages are small and
 * few. When the exchange is over, `release()` returns the bytes that arrived after the last message read,
 * for the relay to forward.
 */
import { ProtocolError } from "../protocol/protocol_error.ts";
import type { RelaySocket } from "./socket.ts";

export interface Message {
  type: number;
  body: Uint8Array;
}

export class MessageReader {
  readonly #maxBodyBytes: number;
  readonly #peer: string;
  #buffer = new Uint8Array(0);
  #waiting: { resolve: (message: Message) => void; reject: (error: Error) => void } | undefined;
  #failure: Error | undefined;

  /** `onClose` hears the socket close, since this reader holds the socket's handlers while it reads. */
  constructor(socket: RelaySocket, options: { maxBodyBytes: number; peer: string; onClose?: (error?: Error) => void }) {
    this.#maxBodyBytes = options.maxBodyBytes;
    this.#peer = options.peer;
    socket.listen({
      data: (chunk) => {
        const joined = new Uint8Array(this.#buffer.length + chunk.length);
        joined.set(this.#buffer);
        joined.set(chunk, this.#buffer.length);
        this.#buffer = joined;
        this.#deliver();
      },
      drain() {},
      close: (error) => {
        this.#failure = new Error(`the ${this.#peer} closed the connection${error ? `: ${error.message}` : ""}`);
        this.#waiting?.reject(this.#failure);
        this.#waiting = undefined;
        options.onClose?.(error);
      },
    });
  }

  /** The next whole message; rejects on close, on a malformed length or after `timeoutMs`. */
  next(timeoutMs: number): Promise<Message> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        reject(new Error(`the ${this.#peer} sent nothing for ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting = {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#deliver();
    });
  }

  /** Bytes received beyond the messages read so far. */
  release(): Uint8Array {
    const rest = this.#buffer;
    this.#buffer = new Uint8Array(0);
    return rest;
  }

  #deliver(): void {
    const waiting = this.#waiting;
    if (!waiting) return;
    if (this.#failure) {
      this.#waiting = undefined;
      waiting.reject(this.#failure);
      return;
    }
    const buffer = this.#buffer;
    if (buffer.length < 5) return;
    const length = (buffer[1]! << 24) | (buffer[2]! << 16) | (buffer[3]! << 8) | buffer[4]!;
    if (length < 4 || length - 4 > this.#maxBodyBytes) {
      this.#waiting = undefined;
      waiting.reject(new ProtocolError(`invalid message from ${this.#peer}: length ${length}`));
      return;
    }
    if (buffer.length < 1 + length) return;
    this.#waiting = undefined;
    this.#buffer = buffer.slice(1 + length);
    waiting.resolve({ type: buffer[0]!, body: buffer.slice(5, 1 + length) });
  }
}
