/**
 * The write side of every adapter: hands bytes to the runtime, keeps what it did not take yet, counts
 * `pendingBytes`, reports `drain` once per full-to-empty transition and closes the write side after
 * `end()` once everything queued is out.
 *
 * Each adapter extends it with three methods. Runtimes take bytes in one of two ways, both expressed
 * by `send`:
 * - synchronously, all or part (Bun's `socket.write` returns how many bytes the kernel took; node's
 *   `write` takes all below its high-water mark): `send` returns that count, and the adapter calls
 *   {@link WriteQueue.ready} when the runtime can take more;
 * - asynchronously (Deno's `conn.write` holds the view until its promise settles; node's `write` above
 *   its high-water mark holds the chunk until `drain`): `send` returns {@link SENDING}, and the adapter
 *   calls {@link WriteQueue.sent} with the count once the runtime is done with the view.
 *
 * The queue holds views, never copies: the contract (RelaySocket.write) has the caller keep bytes it
 * wrote unchanged until `drain` when `write` returned false, and the relay pumps pause their source on
 * that false, so the queue holds at most what one source chunk (plus a rewritten frame) adds before the
 * pump stops. With nothing queued, `write` costs one `send` and no allocation.
 */

/** `send`'s answer when the runtime took the whole view and reports completion later. */
export const SENDING = -1;

/** Queue states (typed `number`: a send can close the socket, which flow analysis cannot see). */
const OPEN: number = 0;
const ENDING: number = 1;
const CLOSED: number = 2;

export abstract class WriteQueue {
  /** Chunks not yet taken by the runtime; while `#sending`, the first one is with the runtime. */
  readonly #chunks: Uint8Array[] = [];
  #pendingBytes = 0;
  #sending = false;
  #state: number = OPEN;

  /** Hands `bytes` to the runtime: the number of bytes taken now (0 to all), or {@link SENDING}. */
  protected abstract send(bytes: Uint8Array): number;
  /** Everything queued went out after some of it had to wait: the socket's `drain` event. */
  protected abstract onDrain(): void;
  /** `end()` was called and everything queued is out: close the write side. */
  protected abstract onEnd(): void;

  /** Bytes accepted by `write` that the runtime has not reported written. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Bytes queued that the runtime does not hold yet (node counts the ones it holds itself). */
  get waitingBytes(): number {
    return this.#sending ? this.#pendingBytes - this.#chunks[0]!.length : this.#pendingBytes;
  }

  /** True once `end()` or `close()` was called: writes are dropped. */
  get ended(): boolean {
    return this.#state !== OPEN;
  }

  /** RelaySocket.write: true when the runtime took every byte now. Dropped (true) after end or close. */
  write(bytes: Uint8Array): boolean {
    if (this.#state !== OPEN) return true;
    if (this.#chunks.length > 0) {
      if (bytes.length > 0) this.#push(bytes);
      return false;
    }
    if (bytes.length === 0) return true;
    const taken = this.send(bytes);
    if (taken === bytes.length || this.#state === CLOSED) return true;
    if (taken === SENDING) {
      this.#sending = true;
      this.#push(bytes);
    } else this.#push(taken > 0 ? bytes.subarray(taken) : bytes);
    return false;
  }

  /** A synchronous runtime can take more (Bun's and node's `drain`). */
  ready(): void {
    if (this.#state === CLOSED || this.#sending || this.#chunks.length === 0) return;
    this.#flush();
  }

  /** An asynchronous send finished: the runtime wrote `count` bytes of the view it held (all by default). */
  sent(count?: number): void {
    if (this.#state === CLOSED || !this.#sending) return;
    this.#sending = false;
    const head = this.#chunks[0]!;
    const written = count === undefined || count > head.length ? head.length : count;
    this.#pendingBytes -= written;
    if (written < head.length) this.#chunks[0] = head.subarray(written);
    else this.#chunks.shift();
    this.#flush();
  }

  /** RelaySocket.end: close the write side once everything queued is out (now if nothing is). */
  end(): void {
    if (this.#state !== OPEN) return;
    this.#state = ENDING;
    if (this.#chunks.length === 0) this.onEnd();
  }

  /** The socket is closed: drop what is queued; nothing is reported any more. */
  close(): void {
    this.#state = CLOSED;
    this.#chunks.length = 0;
    this.#pendingBytes = 0;
    this.#sending = false;
  }

  /** Sends queued chunks until the runtime stops taking them or the queue is empty. */
  #flush(): void {
    const chunks = this.#chunks;
    while (chunks.length > 0) {
      const head = chunks[0]!;
      const taken = this.send(head);
      if (this.#state === CLOSED) return; // the send failed and closed the socket
      if (taken === SENDING) {
        this.#sending = true;
        return;
      }
      if (taken < head.length) {
        if (taken > 0) {
          this.#pendingBytes -= taken;
          chunks[0] = head.subarray(taken);
        }
        return;
      }
      this.#pendingBytes -= head.length;
      chunks.shift();
    }
    if (this.#state === ENDING) this.onEnd();
    else this.onDrain();
  }

  #push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.#pendingBytes += bytes.length;
  }
}
