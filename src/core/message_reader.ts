/**
 * Reads whole typed messages from a socket, one at a time, for the short exchanges pgrelay conducts
 * itself (SCRAM with the client and with the server). Bodies are copied: these messages are small and
 * few. When the exchange is over, `release()` returns the bytes that arrived after the last message read,
 * for the relay to forward.
 *
 * The buffer grows on demand (doubling, so appending is amortized O(1)) and is capped: one message of at
 * most `maxBodyBytes` plus READ_AHEAD_BYTES of what follows it. A peer that sends more before it is asked
 * fails the exchange with a protocol error, and the reader drops whatever arrives after a failure.
 */
import { ProtocolError } from "../protocol/protocol_error.ts";
import type { RelaySocket } from "./socket.ts";

export interface Message {
  type: number;
  body: Uint8Array;
}

/** Bytes a peer may send beyond the message being read (the next messages of a pipelining peer). */
export const READ_AHEAD_BYTES = 65536;
const INITIAL_BYTES = 256;
const HEADER_BYTES = 5;

export class MessageReader {
  readonly #maxBodyBytes: number;
  readonly #peer: string;
  readonly #capBytes: number;
  #buffer = new Uint8Array(0);
  /** The unread bytes are `#buffer[#start, #end)`. */
  #start = 0;
  #end = 0;
  #waiting: { resolve: (message: Message) => void; reject: (error: Error) => void } | undefined;
  #failure: Error | undefined;

  /** `onClose` hears the socket close, since this reader holds the socket's handlers while it reads. */
  constructor(socket: RelaySocket, options: { maxBodyBytes: number; peer: string; onClose?: (error?: Error) => void }) {
    this.#maxBodyBytes = options.maxBodyBytes;
    this.#peer = options.peer;
    this.#capBytes = HEADER_BYTES + options.maxBodyBytes + READ_AHEAD_BYTES;
    socket.listen({
      data: (chunk) => {
        if (this.#failure) return;
        if (!this.#append(chunk)) {
          this.#fail(new ProtocolError(`the ${this.#peer} sent more than ${this.#capBytes} bytes before pgrelay asked for them`));
          return;
        }
        this.#deliver();
      },
      drain() {},
      close: (error) => {
        this.#fail(new Error(`the ${this.#peer} closed the connection${error ? `: ${error.message}` : ""}`));
        options.onClose?.(error);
      },
    });
  }

  /** Bytes held now (for tests and limits). */
  get bufferedBytes(): number {
    return this.#end - this.#start;
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
    const rest = this.#buffer.slice(this.#start, this.#end);
    this.#buffer = new Uint8Array(0);
    this.#start = this.#end = 0;
    return rest;
  }

  /** Appends a chunk, compacting or growing the buffer as needed; false when it would pass the cap. */
  #append(chunk: Uint8Array): boolean {
    const held = this.#end - this.#start;
    const needed = held + chunk.length;
    if (needed > this.#capBytes) return false;
    if (this.#end + chunk.length > this.#buffer.length) {
      if (needed <= this.#buffer.length) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        let size = Math.max(INITIAL_BYTES, this.#buffer.length * 2);
        while (size < needed) size *= 2;
        const grown = new Uint8Array(Math.min(size, this.#capBytes));
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
      }
      this.#start = 0;
      this.#end = held;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
    return true;
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#buffer = new Uint8Array(0);
    this.#start = this.#end = 0;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(this.#failure);
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
    const at = this.#start;
    if (this.#end - at < HEADER_BYTES) return;
    const length = ((buffer[at + 1]! << 24) | (buffer[at + 2]! << 16) | (buffer[at + 3]! << 8) | buffer[at + 4]!) >>> 0;
    if (length < 4 || length - 4 > this.#maxBodyBytes) {
      this.#fail(new ProtocolError(`invalid message from ${this.#peer}: length ${length | 0}`));
      return;
    }
    if (this.#end - at < 1 + length) return;
    this.#waiting = undefined;
    this.#start = at + 1 + length;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    waiting.resolve({ type: buffer[at]!, body: buffer.slice(at + HEADER_BYTES, at + 1 + length) });
  }
}
