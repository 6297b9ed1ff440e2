/**
 * The client side of SCRAM-SHA-256 toward the upstream server, driven by a ClientKey instead of a
 * password. RFC 5802 §3 only needs SaltedPassword to make ClientKey and to check the server; with
 * ClientKey and the verifier (StoredKey, ServerKey) in hand, ClientProof = ClientKey XOR
 * HMAC(StoredKey, AuthMessage) and the expected ServerSignature = HMAC(ServerKey, AuthMessage).
 * This works only when the upstream stores the very verifier pgrelay has (same salt and iterations).
 * No channel binding toward the upstream: gs2 header "n,,". The SCRAM user name is left empty, as libpq
 * does, since PostgreSQL uses the StartupMessage's user.
 * https://www.rfc-editor.org/rfc/rfc5802#section-3 · https://www.rfc-editor.org/rfc/rfc7677 ·
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { isPrintableNonce, splitAttributes } from "./scram_attributes.ts";
import {
  constantTimeEqual,
  hmacSha256,
  randomNonce,
  SCRAM_KEY_LENGTH,
  sha256,
  xorBytes,
} from "./scram_crypto.ts";
import type { ScramVerifier } from "./scram_verifier.ts";

const encoder = new TextEncoder();
const GS2_HEADER = "n,,";

/** Options of {@link ScramClientWithKey}. */
export interface ScramClientWithKeyOptions {
  /** The ClientKey recovered by ScramServerExchange from the client's proof. */
  clientKey: Uint8Array;
  /** The user's verifier from the auth file. */
  verifier: ScramVerifier;
  /** The client nonce. For tests with fixed vectors only; normally 18 random bytes in base64. */
  nonce?: string;
}

/**
 * One upstream exchange: {@link initialResponse} → SASLInitialResponse; AuthenticationSASLContinue data →
 * {@link handleContinue} → SASLResponse; AuthenticationSASLFinal data → {@link handleFinal}. Errors are thrown.
 */
export class ScramClientWithKey {
  #clientKey: Uint8Array;
  #verifier: ScramVerifier;
  #nonce: string;
  #clientFirstBare: string;
  #step: "initial" | "sent-first" | "sent-final" | "finished" = "initial";
  #expectedServerSignature: Uint8Array | undefined;
  #verified = false;

  constructor(options: ScramClientWithKeyOptions) {
    if (options.clientKey.length !== SCRAM_KEY_LENGTH) {
      throw new RangeError(
        `a SCRAM-SHA-256 ClientKey is ${SCRAM_KEY_LENGTH} bytes, got ${options.clientKey.length}`,
      );
    }
    const nonce = options.nonce ?? randomNonce();
    if (!isPrintableNonce(nonce)) throw new RangeError("a SCRAM nonce must be printable ASCII without ','");
    this.#clientKey = new Uint8Array(options.clientKey);
    this.#verifier = options.verifier;
    this.#nonce = nonce;
    this.#clientFirstBare = `n=,r=${nonce}`;
  }

  /** Mechanism and client-first-message for SASLInitialResponse. */
  initialResponse(): { mechanism: "SCRAM-SHA-256"; data: Uint8Array } {
    if (this.#step !== "initial") throw new Error("SCRAM initial response was already sent");
    this.#step = "sent-first";
    return { mechanism: "SCRAM-SHA-256", data: encoder.encode(GS2_HEADER + this.#clientFirstBare) };
  }

  /**
   * Reads server-first-message and returns client-final-message. Throws when the server's salt or iteration
   * count differ from the verifier's (the upstream stores a different verifier than the auth file), when the
   * ClientKey does not belong to the verifier, or when the message is malformed.
   */
  async handleContinue(serverFirst: Uint8Array): Promise<Uint8Array> {
    if (this.#step !== "sent-first") throw new Error("unexpected SCRAM server-first-message at this point");
    this.#step = "finished";
    const text = new TextDecoder().decode(serverFirst);
    const attributes = splitAttributes(text);
    if (attributes?.[0]?.name === "m") {
      throw new Error("upstream SCRAM server-first-message requires an unsupported extension");
    }
    const [nonce, salt, iterations] = attributes ?? [];
    if (nonce?.name !== "r" || salt?.name !== "s" || iterations?.name !== "i") {
      throw new Error("malformed SCRAM server-first-message from upstream: expected r=, s=, i=");
    }
    if (
      !nonce.value.startsWith(this.#nonce) || nonce.value.length === this.#nonce.length ||
      !isPrintableNonce(nonce.value)
    ) {
      throw new Error("upstream SCRAM server nonce does not extend pgrelay's client nonce");
    }
    const saltBytes = decodeBase64(salt.value);
    const iterationCount = /^[1-9][0-9]{0,9}$/.test(iterations.value) ? Number(iterations.value) : Number.NaN;
    if (saltBytes === undefined || Number.isNaN(iterationCount)) {
      throw new Error("malformed SCRAM server-first-message from upstream: bad salt or iteration count");
    }
    if (!constantTimeEqual(saltBytes, this.#verifier.salt) || iterationCount !== this.#verifier.iterations) {
      throw new Error(
        "the upstream server's SCRAM verifier for this user differs from the auth file's (salt or iteration " +
          `count differ: upstream i=${iterationCount}, auth file i=${this.#verifier.iterations}); copy the ` +
          "current pg_authid.rolpassword into the auth file",
      );
    }
    if (!constantTimeEqual(await sha256(this.#clientKey), this.#verifier.storedKey)) {
      throw new Error("the ClientKey does not match the verifier's StoredKey");
    }
    const withoutProof = `c=${encodeBase64(encoder.encode(GS2_HEADER))},r=${nonce.value}`;
    const authMessage = `${this.#clientFirstBare},${text},${withoutProof}`;
    const [clientSignature, serverSignature] = await Promise.all([
      hmacSha256(this.#verifier.storedKey, authMessage),
      hmacSha256(this.#verifier.serverKey, authMessage),
    ]);
    this.#expectedServerSignature = serverSignature;
    this.#step = "sent-final";
    return encoder.encode(`${withoutProof},p=${encodeBase64(xorBytes(this.#clientKey, clientSignature))}`);
  }

  /**
   * True once server-final-message carried the ServerSignature the verifier's ServerKey predicts: only then
   * has the server proven it holds the verifier, and only then may its AuthenticationOk be believed.
   */
  get verified(): boolean {
    return this.#verified;
  }

  /** Checks server-final-message's ServerSignature (proof that the upstream knows ServerKey); throws if not. */
  handleFinal(serverFinal: Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      this.#checkServerFinal(serverFinal);
      resolve();
    });
  }

  #checkServerFinal(serverFinal: Uint8Array): void {
    const expected = this.#expectedServerSignature;
    if (this.#step !== "sent-final" || expected === undefined) {
      throw new Error("unexpected SCRAM server-final-message at this point");
    }
    this.#step = "finished";
    const text = new TextDecoder().decode(serverFinal);
    const first = splitAttributes(text)?.[0];
    if (first?.name === "e") throw new Error(`upstream SCRAM error: ${first.value.slice(0, 64)}`);
    const signature = first?.name === "v" ? decodeBase64(first.value) : undefined;
    if (signature === undefined) throw new Error("malformed SCRAM server-final-message from upstream");
    if (!constantTimeEqual(signature, expected)) {
      throw new Error("server signature did not verify (the upstream does not hold the verifier's ServerKey)");
    }
    this.#verified = true;
  }
}
