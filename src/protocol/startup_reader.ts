/**
 * Collects one untyped startup-phase packet from a client, across any number of chunks. Nothing is
 * allocated before the length word is known and checked (at most MAX_STARTUP_PACKET_BYTES); then exactly
 * that many bytes, handed to the caller with the packet. A reader waiting for its first byte holds 4 bytes.
 */
import { startupPacketLength } from "./startup.ts";

export interface StartupRead {
  /** The whole packet, length word included (a copy owned by the caller). */
  packet: Uint8Array;
  /** Bytes of the chunk that followed the packet (a view). */
  rest: Uint8Array;
}

export class StartupReader {
  readonly #header = new Uint8Array(4);
  /** The packet being collected, sized by its length word; undefined until that word is complete. */
  #packet: Uint8Array | undefined;
  #fill = 0;

  /** Bytes buffered toward the current packet. */
  get buffered(): number {
    return this.#fill;
  }

  /** Bytes this reader holds now beyond its 4-byte header (tests: allocation follows the announced length). */
  get allocatedBytes(): number {
    return this.#packet?.length ?? 0;
  }

  /** Adds a chunk; returns the packet once complete, else null. Throws ProtocolError on a bad length. */
  push(chunk: Uint8Array): StartupRead | null {
    let at = 0;
    let packet = this.#packet;
    if (packet === undefined) {
      const take = Math.min(4 - this.#fill, chunk.length);
      this.#header.set(chunk.subarray(0, take), this.#fill);
      this.#fill += take;
      at = take;
      if (this.#fill < 4) return null;
      packet = new Uint8Array(startupPacketLength(this.#header));
      packet.set(this.#header);
      this.#packet = packet;
    }
    const take = Math.min(packet.length - this.#fill, chunk.length - at);
    packet.set(chunk.subarray(at, at + take), this.#fill);
    this.#fill += take;
    at += take;
    if (this.#fill < packet.length) return null;
    this.#packet = undefined;
    this.#fill = 0;
    return { packet, rest: chunk.subarray(at) };
  }
}
