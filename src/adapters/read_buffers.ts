/**
 * Read buffers for runtimes whose sockets read into memory the caller provides (Deno). A pending read
 * holds its buffer until bytes arrive, so the size of each read follows the one before it: a read that
 * fills its buffer means more is in flight, and the next read takes the next size up, from a process-wide
 * pool, up to 64 KiB; otherwise the next read takes the smallest size that held what the last one returned.
 * An idle socket (its last read was a small message) waits on a small buffer of its own; large buffers go
 * back to the pool as soon as a read is small. Steady bulk transfer reuses one large buffer per socket with
 * no allocation and no extra reads.
 */

/** Buffer sizes, smallest first: what an idle socket holds, then the sizes it grows to under load. */
export const READ_BUFFER_SIZES = [2 * 1024, 16 * 1024, 64 * 1024] as const;
/** Free buffers the pool keeps per size; more are left to the garbage collector. */
const POOL_LIMIT = 16;

const free: Uint8Array[][] = READ_BUFFER_SIZES.map(() => []);

function take(tier: number): Uint8Array {
  return free[tier]!.pop() ?? new Uint8Array(READ_BUFFER_SIZES[tier]!);
}

function giveBack(tier: number, buffer: Uint8Array): void {
  const list = free[tier]!;
  if (list.length < POOL_LIMIT) list.push(buffer);
}

/** One socket's read buffer: small while idle, larger from the pool while reads keep filling it. */
export class ReadBuffers {
  #small: Uint8Array | undefined;
  #current: Uint8Array | undefined;
  #tier = 0;

  /** Bytes of read buffer this socket holds now (tests, and the idle-memory bench's reading of it). */
  get heldBytes(): number {
    const small = this.#small?.length ?? 0;
    return this.#current === undefined || this.#current === this.#small ? small : small + this.#current.length;
  }

  /**
   * The buffer for the next read, given how many bytes the previous read returned (0 before the first).
   * Call only once the bytes of the previous read are no longer in use (the receiver did not pause, or
   * resumed): the previous buffer may go back to the pool.
   */
  next(previousRead: number): Uint8Array {
    const current = this.#current;
    const full = current !== undefined && previousRead === current.length;
    let tier = 0;
    if (full) tier = Math.min(this.#tier + 1, READ_BUFFER_SIZES.length - 1);
    else while (READ_BUFFER_SIZES[tier]! < previousRead) tier++;
    if (current !== undefined && tier === this.#tier) return current;
    if (current !== undefined && this.#tier > 0) giveBack(this.#tier, current);
    this.#tier = tier;
    this.#current = tier === 0 ? (this.#small ??= new Uint8Array(READ_BUFFER_SIZES[0])) : take(tier);
    return this.#current;
  }

  /**
   * The socket is closed. A pooled buffer whose bytes may still be queued elsewhere (a paused receiver
   * forwarded the view) is dropped, never pooled, so no other socket can read into bytes still being sent.
   */
  drop(): void {
    this.#current = undefined;
    this.#small = undefined;
    this.#tier = 0;
  }
}
