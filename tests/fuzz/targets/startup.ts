/**
 * The startup reader and decodeStartupPacket: whatever a client sends before its StartupMessage.
 * Properties: only ProtocolError escapes; the reader never holds more than MAX_STARTUP_PACKET_BYTES and
 * hands over packets of exactly their declared length; every split of the bytes into chunks gives the
 * same packets and the same error.
 */
import { StartupReader } from "../../../src/protocol/startup_reader.ts";
import { decodeStartupPacket } from "../../../src/protocol/startup.ts";
import { MAX_STARTUP_PACKET_BYTES } from "../../../src/protocol/limits.ts";
import { ProtocolError } from "../../../src/protocol/protocol_error.ts";
import { check, type FuzzTarget, onlyDocumented } from "../target.ts";
import { chunksOf } from "./chunks.ts";

function read(input: Uint8Array, chunks: Uint8Array[]): string[] {
  const reader = new StartupReader();
  const seen: string[] = [];
  try {
    for (const chunk of chunks) {
      let rest: Uint8Array = chunk;
      while (rest.length > 0) {
        const read = reader.push(rest);
        check(reader.buffered <= MAX_STARTUP_PACKET_BYTES, `reader holds ${reader.buffered} bytes`);
        if (!read) break;
        const packet = read.packet;
        const declared = new DataView(packet.buffer, packet.byteOffset, packet.byteLength).getInt32(0);
        check(
          packet.length === declared && packet.length <= MAX_STARTUP_PACKET_BYTES,
          `packet of ${packet.length} bytes, declared ${declared}`,
        );
        const decoded = decodeStartupPacket(packet);
        seen.push(
          JSON.stringify(decoded, (_, v) => v instanceof Map ? [...v] : v instanceof Uint8Array ? [...v] : v),
        );
        rest = read.rest;
      }
    }
  } catch (error) {
    onlyDocumented(error, (e) => e instanceof ProtocolError, "startup reader");
    seen.push(`error ${(error as Error).message}`);
  }
  void input;
  return seen;
}

export const startupTarget: FuzzTarget = {
  name: "startup",
  maxLength: 12_000,
  dictionary: [
    "\0\0\0\x08",
    "\x04\xd2\x16\x2f",
    "\x04\xd2\x16\x30",
    "\x04\xd2\x16\x2e",
    "\0\x03\0\0",
    "user\0",
    "database\0",
    "options\0",
    "replication\0",
    "\0\0",
  ],
  run(input) {
    const whole = read(input, [input]);
    for (const chunks of chunksOf(input)) {
      const split = read(input, chunks);
      check(
        JSON.stringify(split) === JSON.stringify(whole),
        `chunking changed the result: ${JSON.stringify(split).slice(0, 300)} vs ${
          JSON.stringify(whole).slice(0, 300)
        }`,
      );
    }
  },
};
