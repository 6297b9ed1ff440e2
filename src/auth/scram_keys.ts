/**
 * Deriving SCRAM-SHA-256 keys and verifiers from a password (RFC 5802 §3, RFC 7677), for tools and tests:
 * pgrelay itself never needs a password in `auth.mode: scram`.
 * https://www.rfc-editor.org/rfc/rfc5802#section-3 · https://www.rfc-editor.org/rfc/rfc7677
 */
import { hmacSha256, saltedPassword, sha256 } from "./scram_crypto.ts";
import type { ScramVerifier } from "./scram_verifier.ts";

/** ClientKey and the two halves of the verifier that derive from it. */
export interface ScramKeys {
  clientKey: Uint8Array;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

/**
 * SaltedPassword = Hi(password, salt, i); ClientKey = HMAC(SaltedPassword, "Client Key");
 * StoredKey = H(ClientKey); ServerKey = HMAC(SaltedPassword, "Server Key").
 *
 * The password is used as UTF-8 without SASLprep. PostgreSQL also uses ASCII passwords unchanged, so the
 * result matches its verifiers for every ASCII password; a non-ASCII one may differ.
 */
export async function deriveScramKeys(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<ScramKeys> {
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError(`SCRAM iteration count must be a positive integer, got ${iterations}`);
  }
  const salted = await saltedPassword(password, salt, iterations);
  const clientKey = await hmacSha256(salted, "Client Key");
  const [storedKey, serverKey] = await Promise.all([sha256(clientKey), hmacSha256(salted, "Server Key")]);
  return { clientKey, storedKey, serverKey };
}

/** The verifier PostgreSQL would store for `password` with this salt and iteration count. */
export async function makeScramVerifier(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<ScramVerifier> {
  const { storedKey, serverKey } = await deriveScramKeys(password, salt, iterations);
  return { iterations, salt: new Uint8Array(salt), storedKey, serverKey };
}
