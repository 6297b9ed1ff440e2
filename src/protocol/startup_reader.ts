/**
 * Collects one untyped startup-phase packet from a client, across any number of chunks, holding at most
 * MAX_STARTUP_PACKET_BYTES. The length word is checked before anything is buffered beyond it.
 */
import { startupPacketLength } from "./startup.ts";
import { MAX_STARTUP_PACKET_BYTES } from "./limits.ts";

export interface StartupRead {
  /** The whole packet, length word included (a copy owned by the caller). */
  packet: Uint8Array;
  /** Bytes of the chunk that followed the packet (a view). */
  rest: Uint8Array;
}

export class StartupReader {
  readonly #buffer = new Uint8Array(MAX_STARTUP_PACKET_BYTES);
  #fill = 0;
  #length = 0;

  /** Bytes buffered toward the current packet. */
  get buffered(): number {
    return this.#fill;
  }

  /** Adds a chunk; returns the packet once complete, else null. Throws ProtocolError on a bad length. */
  push(chunk: Uint8Array): StartupRead | null {
    let at = 0;
    if (this.#length === 0) {
      const take = Math.min(4 - this.#fill, chunk.length);
      this.#buffer.set(chunk.subarray(0, take), this.#fill);
      this.#fill += take;
      at = take;
      if (this.#fill < 4) return null;
      this.#length = startupPacketLength(this.#buffer.subarray(0, 4));
    }
    const take = Math.min(this.#length - this.#fill, chunk.length - at);
    this.#buffer.set(chunk.subarray(at, at + take), this.#fill);
    this.#fill += take;
    at += take;
    if (this.#fill < this.#length) return null;
    const packet = this.#buffer.slice(0, this.#length);
    this.#fill = 0;
    this.#length = 0;
    return { packet, rest: chunk.subarray(at) };
  }
}
