/**
 * PostgreSQL's mock SCRAM authentication (src/backend/libpq/auth-scram.c, `mock_scram_secret` and
 * `scram_mock_salt`): for a user pgrelay cannot authenticate (no verifier, or an md5 or plaintext entry)
 * it runs an exchange that looks like a real one and fails like a wrong password, so a client cannot
 * probe which user names exist. The salt is a keyed hash of the user name, so repeated attempts see the
 * same salt, as they would for a real user; its length and the iteration count are PostgreSQL's defaults.
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { hmacSha256, SCRAM_KEY_LENGTH } from "./scram_crypto.ts";
import type { ScramVerifier } from "./scram_verifier.ts";

/** PostgreSQL's SCRAM_DEFAULT_SALT_LEN: the salt length of verifiers it creates. */
export const MOCK_SALT_LENGTH = 16;
/** PostgreSQL's default scram_iterations (SCRAM_SHA_256_DEFAULT_ITERATIONS). */
export const MOCK_ITERATIONS = 4096;
/** Length of a secret made by {@link ScramMock}'s constructor; shorter given secrets are refused. */
export const MOCK_SECRET_LENGTH = 32;

/** Mock verifiers keyed by one secret; every instance with the same secret answers alike. */
export class ScramMock {
  readonly #secret: Uint8Array;

  /** `secret`: at least 16 random bytes, shared by processes that serve one listen address. */
  constructor(secret: Uint8Array = crypto.getRandomValues(new Uint8Array(MOCK_SECRET_LENGTH))) {
    if (secret.length < 16) throw new RangeError(`a mock SCRAM secret needs at least 16 bytes, got ${secret.length}`);
    this.#secret = secret.slice();
  }

  /**
   * A verifier for `user` that no password matches: salt HMAC-SHA-256(secret, user) cut to 16 bytes,
   * 4096 iterations, zero keys (like PostgreSQL's; a doomed exchange never uses them to accept).
   */
  async verifier(user: string): Promise<ScramVerifier> {
    const salt = (await hmacSha256(this.#secret, user)).slice(0, MOCK_SALT_LENGTH);
    return {
      iterations: MOCK_ITERATIONS,
      salt,
      storedKey: new Uint8Array(SCRAM_KEY_LENGTH),
      serverKey: new Uint8Array(SCRAM_KEY_LENGTH),
    };
  }
}
