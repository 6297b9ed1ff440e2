/**
 * SCRAM-SHA-256 client side with a password, for pgrelay's own login as `auth.user` (auth.query). Once the
 * server's first message names the salt and iteration count, the password yields the ClientKey and the
 * verifier, and the exchange continues as ScramClientWithKey's. https://www.rfc-editor.org/rfc/rfc7677
 */
import { decodeBase64 } from "./base64.ts";
import { ScramClientWithKey } from "./scram_client_with_key.ts";
import { randomNonce } from "./scram_crypto.ts";
import { deriveScramKeys } from "./scram_keys.ts";
import { splitAttributes } from "./scram_attributes.ts";

/**
 * The most PBKDF2 iterations pgrelay computes for a server: a hostile or misconfigured upstream could ask
 * for 2^31 and hold a crypto thread for hours per login. PostgreSQL's default is 4096 (scram_iterations).
 */
export const MAX_SCRAM_ITERATIONS = 1_000_000;

export class ScramClientWithPassword {
  readonly #password: string;
  readonly #nonce = randomNonce();
  #withKey: ScramClientWithKey | undefined;

  constructor(password: string) {
    this.#password = password;
  }

  initialResponse(): { mechanism: "SCRAM-SHA-256"; data: Uint8Array } {
    return { mechanism: "SCRAM-SHA-256", data: new TextEncoder().encode(`n,,n=,r=${this.#nonce}`) };
  }

  /** True once the server proved, with its SCRAM signature, that it holds the password's verifier. */
  get verified(): boolean {
    return this.#withKey?.verified ?? false;
  }

  async handleContinue(serverFirst: Uint8Array): Promise<Uint8Array> {
    if (this.#withKey) throw new Error("unexpected SCRAM server-first-message at this point");
    const attributes = splitAttributes(new TextDecoder().decode(serverFirst));
    const salt = attributes?.find((a) => a.name === "s")?.value;
    const iterations = Number(attributes?.find((a) => a.name === "i")?.value);
    const saltBytes = salt === undefined ? undefined : decodeBase64(salt);
    if (!saltBytes || !Number.isInteger(iterations) || iterations < 1) {
      throw new Error("the server's SCRAM first message has no usable salt and iteration count");
    }
    if (iterations > MAX_SCRAM_ITERATIONS) {
      throw new Error(
        `the server asks for ${iterations} SCRAM iterations; pgrelay computes at most ${MAX_SCRAM_ITERATIONS} (lower the role's scram_iterations and set its password again)`,
      );
    }
    const keys = await deriveScramKeys(this.#password, saltBytes, iterations);
    const verifier = { iterations, salt: saltBytes, storedKey: keys.storedKey, serverKey: keys.serverKey };
    this.#withKey = new ScramClientWithKey({ clientKey: keys.clientKey, verifier, nonce: this.#nonce });
    this.#withKey.initialResponse(); // the same client-first message this client already sent
    return await this.#withKey.handleContinue(serverFirst);
  }

  async handleFinal(serverFinal: Uint8Array): Promise<void> {
    if (!this.#withKey) throw new Error("SCRAM final message before the first one");
    await this.#withKey.handleFinal(serverFinal);
  }
}
