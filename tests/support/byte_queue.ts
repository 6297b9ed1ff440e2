/** Growable FIFO of bytes with amortized O(1) append and consume (for stream reassembly). */
export class ByteQueue {
  #buf = new Uint8Array(4096);
  #start = 0;
  #end = 0;

  /** Number of unconsumed bytes. */
  get length(): number {
    return this.#end - this.#start;
  }

  /** Unconsumed bytes as a view (valid until the next append). */
  view(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** Appends a copy of `bytes`. */
  append(bytes: Uint8Array): void {
    if (this.#end + bytes.length > this.#buf.length) {
      const live = this.#end - this.#start;
      let capacity = this.#buf.length;
      while (capacity < live + bytes.length) capacity *= 2;
      const next = capacity === this.#buf.length ? this.#buf : new Uint8Array(capacity);
      if (next === this.#buf) next.copyWithin(0, this.#start, this.#end);
      else next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  /** Removes and returns (a copy of) the first `count` bytes. */
  take(count: number): Uint8Array {
    const n = Math.min(count, this.length);
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.skip(n);
    return out;
  }

  /** Drops the first `count` bytes. */
  skip(count: number): void {
    this.#start = Math.min(this.#end, this.#start + count);
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }
}
