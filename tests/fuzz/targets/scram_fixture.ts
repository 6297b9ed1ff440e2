/**
 * Fixed SCRAM material for the SCRAM targets and their seeds: a verifier for a known password with a tiny
 * iteration count, fixed nonces, and a way to pack two messages into one fuzz input.
 */
import { deriveScramKeys, type ScramKeys } from "../../../src/auth/scram_keys.ts";
import type { ScramVerifier } from "../../../src/auth/scram_verifier.ts";

export const PASSWORD = "fuzz-password";
export const SALT = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
export const ITERATIONS = 4;
export const CLIENT_NONCE = "fuzzClientNonce0123456789";
export const SERVER_NONCE = "fuzzServerNonceABCDEFGHIJ";
/** tls-server-end-point data the server side binds to. */
export const CHANNEL_BINDING = new Uint8Array(32).fill(7);

let material: Promise<{ keys: ScramKeys; verifier: ScramVerifier }> | undefined;

export function scramMaterial(): Promise<{ keys: ScramKeys; verifier: ScramVerifier }> {
  material ??= deriveScramKeys(PASSWORD, SALT, ITERATIONS).then((keys) => ({
    keys,
    verifier: { iterations: ITERATIONS, salt: SALT, storedKey: keys.storedKey, serverKey: keys.serverKey },
  }));
  return material;
}

/** `[flags][u16 length of first][first][second]`. */
export function packMessages(flags: number, first: Uint8Array, second: Uint8Array): Uint8Array {
  const out = new Uint8Array(3 + first.length + second.length);
  out[0] = flags;
  out[1] = first.length >> 8;
  out[2] = first.length & 0xff;
  out.set(first, 3);
  out.set(second, 3 + first.length);
  return out;
}

export function unpackMessages(input: Uint8Array): { flags: number; first: Uint8Array; second: Uint8Array } {
  const flags = input[0] ?? 0;
  const length = ((input[1] ?? 0) << 8) | (input[2] ?? 0);
  const first = input.subarray(Math.min(3, input.length), Math.min(3 + length, input.length));
  const second = input.subarray(Math.min(3 + length, input.length));
  return { flags, first, second };
}
