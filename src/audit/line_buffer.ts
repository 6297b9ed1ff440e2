/**
 * The audit lines waiting to be written, already UTF-8: each line is encoded straight into a 64 KiB chunk
 * (no per-line bytes, no joined batch string), and a written chunk is kept for reuse. `take()` hands the
 * filled part over to the writer; those bytes stay untouched until `recycle()` gives the chunks back.
 */
const CHUNK_BYTES = 64 * 1024;
/** Written chunks kept for reuse; more are left to the garbage collector. */
const SPARE_CHUNKS = 4;
const NEWLINE = 0x0a;

const encoder = new TextEncoder();

export class LineBuffer {
  #sealed: Uint8Array[] = [];
  #current: Uint8Array = new Uint8Array(CHUNK_BYTES);
  #fill = 0;
  #lines = 0;
  #bytes = 0;
  readonly #spare: Uint8Array[] = [];

  /** Lines held. */
  get lines(): number {
    return this.#lines;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds one line (without its newline). */
  append(line: string): void {
    let written = this.#encode(line);
    if (written < 0) {
      this.#seal(line.length * 3 + 1); // at most 3 UTF-8 bytes per UTF-16 unit, plus the newline
      written = this.#encode(line);
    }
    this.#current[this.#fill + written] = NEWLINE;
    this.#fill += written + 1;
    this.#bytes += written + 1;
    this.#lines++;
  }

  /** Hands over everything held (the views stay valid until recycled) and starts empty. */
  take(): { chunks: Uint8Array[]; lines: number } {
    if (this.#fill > 0) this.#seal(0);
    const taken = { chunks: this.#sealed, lines: this.#lines };
    this.#sealed = [];
    this.#lines = 0;
    this.#bytes = 0;
    return taken;
  }

  /** Returns chunks from `take()` once they were written. */
  recycle(chunks: Uint8Array[]): void {
    for (const chunk of chunks) {
      if (this.#spare.length >= SPARE_CHUNKS) return;
      if (chunk.buffer.byteLength === CHUNK_BYTES) this.#spare.push(new Uint8Array(chunk.buffer));
    }
  }

  /** Encodes `line` at the fill mark, leaving room for its newline; -1 when it does not fit whole. */
  #encode(line: string): number {
    const room = this.#current.subarray(this.#fill, this.#current.length - 1);
    const { read, written } = encoder.encodeInto(line, room);
    return read === line.length ? written : -1;
  }

  /** Closes the current chunk and starts one with room for at least `need` bytes. */
  #seal(need: number): void {
    if (this.#fill > 0) this.#sealed.push(this.#current.subarray(0, this.#fill));
    this.#current = need <= CHUNK_BYTES ? this.#spare.pop() ?? new Uint8Array(CHUNK_BYTES) : new Uint8Array(need);
    this.#fill = 0;
  }
}
