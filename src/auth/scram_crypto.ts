/**
 * The SCRAM-SHA-256 primitives of RFC 5802 §2.2/§3 with the SHA-256 of RFC 7677, on `crypto.subtle`.
 * https://www.rfc-editor.org/rfc/rfc5802#section-3 · https://www.rfc-editor.org/rfc/rfc7677
 */

/** Length in bytes of SHA-256 output: ClientKey, StoredKey, ServerKey, proofs and signatures. */
export const SCRAM_KEY_LENGTH = 32;

const encoder = new TextEncoder();

function bytesOf(data: Uint8Array | string): Uint8Array<ArrayBuffer> {
  return typeof data === "string" ? encoder.encode(data) : new Uint8Array(data);
}

/** HMAC-SHA-256(key, data); a string is UTF-8 encoded. */
export async function hmacSha256(
  key: Uint8Array,
  data: Uint8Array | string,
): Promise<Uint8Array<ArrayBuffer>> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, bytesOf(data)));
}

/** SHA-256(data). */
export async function sha256(data: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(data)));
}

/** SaltedPassword := Hi(password, salt, i), i.e. PBKDF2-HMAC-SHA-256 with a 32-byte output. */
export async function saltedPassword(
  password: Uint8Array | string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const key = await crypto.subtle.importKey("raw", bytesOf(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(salt), iterations },
    key,
    SCRAM_KEY_LENGTH * 8,
  );
  return new Uint8Array(bits);
}

/** Byte-wise XOR of two equally long arrays. */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  if (a.length !== b.length) throw new RangeError(`cannot XOR ${a.length} bytes with ${b.length} bytes`);
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Equality whose running time depends only on the lengths, not on where the bytes differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** A fresh nonce: `length` random bytes, base64-encoded (printable, never contains ','). */
export function randomNonce(length = 18): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
