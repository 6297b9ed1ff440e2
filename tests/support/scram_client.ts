/** Client side of SASL SCRAM-SHA-256 (RFC 5802/7677) as spoken by PostgreSQL, without channel binding. */
import { Buffer } from "node:buffer";
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** SASL mechanism name offered by PostgreSQL. */
export const SCRAM_SHA_256 = "SCRAM-SHA-256";

/**
 * One SCRAM exchange: {@link clientFirst} → {@link clientFinal}(server-first) →
 * {@link verifyServerFinal}(server-final). The password is used as-is (no SASLprep).
 */
export class ScramClient {
  #password: string;
  #nonce: string;
  #clientFirstBare: string;
  #expectedServerSignature: Uint8Array | undefined;

  constructor(password: string, nonce = randomBytes(18).toString("base64")) {
    this.#password = password;
    this.#nonce = nonce;
    // PostgreSQL ignores the SCRAM user name (it uses the startup user), so send it empty.
    this.#clientFirstBare = `n=,r=${nonce}`;
  }

  /** client-first-message: gs2 header "n,," (no channel binding) + bare part. */
  clientFirst(): Uint8Array {
    return encoder.encode(`n,,${this.#clientFirstBare}`);
  }

  /** Builds client-final-message (with proof) from the server-first-message. */
  clientFinal(serverFirstBytes: Uint8Array): Uint8Array {
    const serverFirst = decoder.decode(serverFirstBytes);
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get("r");
    const salt = attrs.get("s");
    const iterations = Number.parseInt(attrs.get("i") ?? "", 10);
    if (nonce === undefined || salt === undefined || !Number.isFinite(iterations) || iterations < 1) {
      throw new Error(`malformed SCRAM server-first-message: ${serverFirst}`);
    }
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) {
      throw new Error("SCRAM server nonce does not extend the client nonce");
    }
    const saltedPassword = pbkdf2Sync(this.#password, Buffer.from(salt, "base64"), iterations, 32, "sha256");
    const clientKey = hmac(saltedPassword, "Client Key");
    const storedKey = createHash("sha256").update(clientKey).digest();
    const clientFinalWithoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = clientKey.map((byte, i) => byte ^ (clientSignature[i] ?? 0));
    this.#expectedServerSignature = hmac(hmac(saltedPassword, "Server Key"), authMessage);
    return encoder.encode(`${clientFinalWithoutProof},p=${Buffer.from(proof).toString("base64")}`);
  }

  /** Checks the server-final-message signature; throws on mismatch or a SCRAM error. */
  verifyServerFinal(serverFinalBytes: Uint8Array): void {
    const serverFinal = decoder.decode(serverFinalBytes);
    const attrs = parseAttributes(serverFinal);
    const error = attrs.get("e");
    if (error !== undefined) throw new Error(`SCRAM server error: ${error}`);
    const verifier = attrs.get("v");
    if (verifier === undefined || this.#expectedServerSignature === undefined) {
      throw new Error(`unexpected SCRAM server-final-message: ${serverFinal}`);
    }
    const actual = Buffer.from(verifier, "base64");
    const expected = this.#expectedServerSignature;
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      throw new Error("SCRAM server signature mismatch");
    }
  }
}

function hmac(key: Uint8Array, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/** "a=1,b=2" → Map; values may contain '='. */
function parseAttributes(message: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of message.split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) attrs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return attrs;
}
