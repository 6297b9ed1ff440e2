/**
 * Test-only SCRAM-SHA-256(-PLUS) client that knows the password, written on node:crypto so it shares no
 * code with src/auth (an independent implementation of RFC 5802/7677 to test pgrelay's SCRAM against), and
 * the one RawClient logs in with.
 * https://www.rfc-editor.org/rfc/rfc5802 · https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { Buffer } from "node:buffer";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface PasswordScramClientOptions {
  password: string;
  /** gs2 header: "n,," (default), "y,," or "p=tls-server-end-point,,". */
  gs2Header?: string;
  /** Channel-binding data appended to the gs2 header in c= (PLUS only). */
  channelBinding?: Uint8Array;
  /** SCRAM user name (PostgreSQL ignores it; default empty). */
  user?: string;
  nonce?: string;
  /** Replace the c= value with this one (to test binding checks). */
  forceChannelBindingAttribute?: string;
}

/** Keys derived from a password the way RFC 5802 §3 says, with node:crypto. */
export function passwordKeys(password: string, salt: Uint8Array, iterations: number): {
  clientKey: Uint8Array;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
} {
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  return {
    clientKey: new Uint8Array(clientKey),
    storedKey: new Uint8Array(createHash("sha256").update(clientKey).digest()),
    serverKey: new Uint8Array(createHmac("sha256", salted).update("Server Key").digest()),
  };
}

export class PasswordScramClient {
  readonly #options: PasswordScramClientOptions;
  readonly #gs2Header: string;
  readonly #clientFirstBare: string;
  readonly #nonce: string;
  #expectedServerSignature: Buffer | undefined;

  constructor(options: PasswordScramClientOptions) {
    this.#options = options;
    this.#gs2Header = options.gs2Header ?? "n,,";
    this.#nonce = options.nonce ?? randomBytes(18).toString("base64");
    this.#clientFirstBare = `n=${options.user ?? ""},r=${this.#nonce}`;
  }

  clientFirst(): Uint8Array {
    return encoder.encode(this.#gs2Header + this.#clientFirstBare);
  }

  clientFinal(serverFirstBytes: Uint8Array): Uint8Array {
    const serverFirst = decoder.decode(serverFirstBytes);
    const attrs = new Map(serverFirst.split(",").map((part) => [part.slice(0, 1), part.slice(2)] as const));
    const nonce = attrs.get("r")!;
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) {
      throw new Error("SCRAM server nonce does not extend the client nonce");
    }
    const salt = Buffer.from(attrs.get("s")!, "base64");
    const iterations = Number(attrs.get("i"));
    const { clientKey, storedKey } = passwordKeys(this.#options.password, salt, iterations);
    const salted = pbkdf2Sync(this.#options.password, salt, iterations, 32, "sha256");
    const cbind = Buffer.concat([
      Buffer.from(this.#gs2Header),
      this.#options.channelBinding ?? new Uint8Array(),
    ]);
    const c = this.#options.forceChannelBindingAttribute ?? cbind.toString("base64");
    const withoutProof = `c=${c},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac("sha256", storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]!));
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    this.#expectedServerSignature = createHmac("sha256", serverKey).update(authMessage).digest();
    return encoder.encode(`${withoutProof},p=${proof.toString("base64")}`);
  }

  /** Throws unless server-final carries the expected ServerSignature. */
  verifyServerFinal(serverFinal: Uint8Array): void {
    const text = decoder.decode(serverFinal);
    const expected = `v=${this.#expectedServerSignature?.toString("base64")}`;
    if (text !== expected) throw new Error(`server signature mismatch: ${text} != ${expected}`);
  }
}
