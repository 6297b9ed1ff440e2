/**
 * Byte-level mutations (libFuzzer's classic set): flip a bit, set a byte, set an "interesting" value
 * (0, 0xff, lengths near limits as int32), insert or delete a range, duplicate a range, splice in part of
 * another seed, insert a dictionary token. One to four of them are stacked per input.
 */
import type { Prng } from "./prng.ts";
import { concatBytes } from "../support/bytes.ts";

const encoder = new TextEncoder();
const INTERESTING_BYTES = [
  0,
  1,
  0x7f,
  0x80,
  0xff,
  0x27,
  0x22,
  0x24,
  0x5c,
  0x2c,
  0x3d,
  0x0a,
  0x2f,
  0x2a,
  0x2d,
];
const INTERESTING_INT32 = [
  0,
  1,
  3,
  4,
  5,
  7,
  8,
  9,
  16,
  255,
  256,
  9999,
  10_000,
  10_001,
  65_535,
  65_536,
  0x7fff_ffff,
  -1,
  -8,
  -0x8000_0000,
];

export interface MutationContext {
  /** Other inputs to splice from. */
  seeds: readonly Uint8Array[];
  /** Tokens worth inserting whole (keywords, delimiters, attribute names). */
  dictionary: readonly Uint8Array[];
  /** Inputs are cut to this many bytes. */
  maxLength: number;
}

export function dictionaryOf(words: readonly string[]): Uint8Array[] {
  return words.map((word) => encoder.encode(word));
}

export function mutate(input: Uint8Array, rng: Prng, context: MutationContext): Uint8Array {
  let bytes = input;
  const rounds = 1 + rng.below(4);
  for (let round = 0; round < rounds; round++) bytes = mutateOnce(bytes, rng, context);
  return bytes.length > context.maxLength ? bytes.subarray(0, context.maxLength) : bytes;
}

function mutateOnce(input: Uint8Array, rng: Prng, context: MutationContext): Uint8Array {
  const n = input.length;
  const at = rng.below(n + 1);
  switch (rng.below(10)) {
    case 0: { // flip a bit
      if (n === 0) return rng.bytes(1);
      const out = input.slice();
      out[rng.below(n)]! ^= 1 << rng.below(8);
      return out;
    }
    case 1: { // a random byte
      if (n === 0) return rng.bytes(1);
      const out = input.slice();
      out[rng.below(n)] = rng.below(256);
      return out;
    }
    case 2: { // an interesting byte
      if (n === 0) return new Uint8Array([rng.pick(INTERESTING_BYTES)]);
      const out = input.slice();
      out[rng.below(n)] = rng.pick(INTERESTING_BYTES);
      return out;
    }
    case 3: { // an interesting int32, big-endian, overwriting (length words)
      if (n < 4) return concat(input, rng.bytes(4 - n));
      const out = input.slice();
      const value = rng.chance(0.3) ? n + rng.between(-8, 8) : rng.pick(INTERESTING_INT32);
      new DataView(out.buffer).setInt32(rng.below(n - 3), value | 0);
      return out;
    }
    case 4: { // insert random bytes
      const extra = rng.bytes(1 + rng.below(rng.chance(0.1) ? 256 : 8));
      return concat(input.subarray(0, at), extra, input.subarray(at));
    }
    case 5: { // delete a range
      if (n === 0) return input;
      const length = 1 + rng.below(Math.min(n - at, 16) || 1);
      return concat(input.subarray(0, at), input.subarray(Math.min(n, at + length)));
    }
    case 6: { // duplicate a range
      if (n === 0) return input;
      const from = rng.below(n);
      const length = 1 + rng.below(Math.min(n - from, 64));
      return concat(input.subarray(0, at), input.subarray(from, from + length), input.subarray(at));
    }
    case 7: { // splice another seed in
      const other = rng.pick(context.seeds);
      if (!other || other.length === 0) return input;
      const from = rng.below(other.length);
      const length = 1 + rng.below(other.length - from);
      return rng.chance(0.5)
        ? concat(input.subarray(0, at), other.subarray(from, from + length))
        : concat(input.subarray(0, at), other.subarray(from, from + length), input.subarray(at));
    }
    case 8:
    case 9: { // insert or overwrite with a dictionary token
      if (context.dictionary.length === 0) {
        return concat(input.subarray(0, at), rng.bytes(1), input.subarray(at));
      }
      const token = rng.pick(context.dictionary);
      return rng.chance(0.5)
        ? concat(input.subarray(0, at), token, input.subarray(at))
        : concat(input.subarray(0, at), token, input.subarray(Math.min(n, at + token.length)));
    }
  }
  return input;
}

export const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts);
