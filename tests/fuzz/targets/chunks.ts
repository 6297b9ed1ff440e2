/** Splits of an input into chunks, chosen from the input's own hash so a saved input replays the same. */
import { fnv1a, Prng } from "../prng.ts";

export function chunksOf(input: Uint8Array): Uint8Array[][] {
  const rng = new Prng(fnv1a(input));
  const splits: Uint8Array[][] = [];
  // Byte by byte (small inputs only), and two random splits.
  if (input.length <= 512) {
    splits.push(Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1)));
  }
  for (let k = 0; k < 2; k++) {
    const chunks: Uint8Array[] = [];
    let at = 0;
    while (at < input.length) {
      const size = 1 + rng.below(rng.chance(0.5) ? 8 : 64);
      chunks.push(input.subarray(at, at + size));
      at += size;
    }
    splits.push(chunks);
  }
  return splits;
}
