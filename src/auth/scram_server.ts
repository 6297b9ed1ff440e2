/**
 * The server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS for one client connection, as PostgreSQL speaks
 * it: RFC 5802 with RFC 7677's SHA-256, `tls-server-end-point` channel binding (RFC 5929), the SCRAM user
 * name ignored (the StartupMessage's `user` counts) and no authzid or extensions.
 * Besides authenticating the client it recovers the ClientKey (ClientProof XOR ClientSignature), which
 * pgrelay then uses to log in upstream with {@link ScramClientWithKey} without ever seeing the password.
 * https://www.rfc-editor.org/rfc/rfc5802 · https://www.rfc-editor.org/rfc/rfc7677 ·
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
import { malformed, passwordFailed, type ScramError } from "./scram_error.ts";
import type { ScramVerifier } from "./scram_verifier.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";

export type { ScramError } from "./scram_error.ts";
export { pemToDer, tlsServerEndPointHash } from "./tls_server_end_point.ts";

/** SASL mechanism names (PostgreSQL offers -PLUS first when the connection uses TLS). */
export const SCRAM_SHA_256 = "SCRAM-SHA-256";
export const SCRAM_SHA_256_PLUS = "SCRAM-SHA-256-PLUS";

/** The only channel-binding type PostgreSQL (and pgrelay) supports. */
const CHANNEL_BINDING_TYPE = "tls-server-end-point";

const encoder = new TextEncoder();

/** Options of {@link ScramServerExchange}. */
export interface ScramServerOptions {
  /** The StartupMessage's user name, used in the wrong-password message. */
  user: string;
  /** Offer SCRAM-SHA-256-PLUS: only on a TLS connection pgrelay terminates; requires `channelBinding`. */
  offerPlus: boolean;
  /** tls-server-end-point data: {@link tlsServerEndPointHash} of pgrelay's own certificate. */
  channelBinding?: Uint8Array;
  /** The server's nonce part. For tests with fixed vectors only; normally 18 random bytes in base64. */
  serverNonce?: string;
  /**
   * A mock exchange (PostgreSQL's "doomed" state; see scram_mock.ts): every message is read and checked
   * as usual, and a well-formed proof fails exactly as a wrong password does.
   */
  doomed?: boolean;
}

type State =
  | { step: "initial" }
  | { step: "sent-server-first"; gs2Header: string; plus: boolean; nonce: string; authPrefix: string }
  | { step: "finished" };

/**
 * One exchange: {@link mechanisms} for AuthenticationSASL → {@link handleInitial}(SASLInitialResponse) →
 * AuthenticationSASLContinue → {@link handleFinal}(SASLResponse) → AuthenticationSASLFinal + AuthenticationOk.
 * Any error ends the exchange; send it to the client as FATAL and close.
 */
export class ScramServerExchange {
  #verifier: ScramVerifier;
  #user: string;
  #offerPlus: boolean;
  #channelBinding: Uint8Array | undefined;
  #serverNonce: string | undefined;
  #doomed: boolean;
  #state: State = { step: "initial" };

  constructor(verifier: ScramVerifier, options: ScramServerOptions) {
    if (options.offerPlus && options.channelBinding === undefined) {
      throw new RangeError("SCRAM-SHA-256-PLUS needs the channel-binding data of pgrelay's certificate");
    }
    if (options.serverNonce !== undefined && !isPrintableNonce(options.serverNonce)) {
      throw new RangeError("a SCRAM nonce must be printable ASCII without ','");
    }
    this.#verifier = verifier;
    this.#user = options.user;
    this.#offerPlus = options.offerPlus;
    this.#channelBinding = options.channelBinding;
    this.#serverNonce = options.serverNonce;
    this.#doomed = options.doomed ?? false;
  }

  /** The mechanisms for AuthenticationSASL, in PostgreSQL's order of preference. */
  mechanisms(): string[] {
    return this.#offerPlus ? [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] : [SCRAM_SHA_256];
  }

  /** Reads client-first-message (RFC 5802 §7) and returns server-first-message. */
  handleInitial(
    mechanism: string,
    clientFirst: Uint8Array,
  ): Promise<{ serverFirst: Uint8Array } | { error: ScramError }> {
    return Promise.resolve(this.#initial(mechanism, clientFirst));
  }

  #initial(mechanism: string, clientFirst: Uint8Array): { serverFirst: Uint8Array } | { error: ScramError } {
    if (this.#state.step !== "initial") return this.#fail(malformed("SASLInitialResponse arrived twice."));
    if (!this.mechanisms().includes(mechanism)) {
      return this.#fail({
        code: SQLSTATE.PROTOCOL_VIOLATION,
        message: "client selected an invalid SASL authentication mechanism",
      });
    }
    const plus = mechanism === SCRAM_SHA_256_PLUS;
    const text = decodeUtf8(clientFirst);
    if (text === undefined) return this.#fail(malformed("client-first-message is not valid UTF-8."));

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const firstComma = text.indexOf(",");
    if (firstComma < 0) return this.#fail(malformed("client-first-message has no GS2 header."));
    const flag = text.slice(0, firstComma);
    if (flag === "n" || flag === "y") {
      if (plus) {
        return this.#fail(malformed(
          "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.",
        ));
      }
      if (flag === "y" && this.#offerPlus) {
        return this.#fail({
          code: SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
          message: "SCRAM channel binding negotiation error",
          detail: "The client supports SCRAM channel binding but thinks the server does not.  " +
            "However, this server does support channel binding.",
        });
      }
    } else if (flag.startsWith("p=")) {
      if (!plus) {
        return this.#fail(malformed(
          "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.",
        ));
      }
      const type = flag.slice(2);
      if (type !== CHANNEL_BINDING_TYPE) {
        return this.#fail({
          code: SQLSTATE.PROTOCOL_VIOLATION,
          message: `unsupported SCRAM channel-binding type "${sanitize(type)}"`,
        });
      }
    } else {
      return this.#fail(malformed(`Unexpected channel-binding flag "${sanitize(flag)}".`));
    }
    const secondComma = text.indexOf(",", firstComma + 1);
    if (secondComma < 0) return this.#fail(malformed("client-first-message has an incomplete GS2 header."));
    if (secondComma !== firstComma + 1) {
      return this.#fail({
        code: SQLSTATE.FEATURE_NOT_SUPPORTED,
        message: "client uses authorization identity, but it is not supported",
      });
    }
    const gs2Header = text.slice(0, secondComma + 1);
    const clientFirstBare = text.slice(secondComma + 1);

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const attributes = splitAttributes(clientFirstBare);
    if (attributes === undefined) {
      return this.#fail(malformed("client-first-message-bare is not a list of attributes."));
    }
    if (attributes[0]?.name === "m") {
      return this.#fail({
        code: SQLSTATE.FEATURE_NOT_SUPPORTED,
        message: "client requires an unsupported SCRAM extension",
      });
    }
    if (attributes[0]?.name !== "n") {
      return this.#fail(malformed('Expected attribute "n" in client-first-message.'));
    }
    const clientNonce = attributes[1];
    if (clientNonce?.name !== "r") {
      return this.#fail(malformed('Expected attribute "r" in client-first-message.'));
    }
    if (!isPrintableNonce(clientNonce.value)) {
      return this.#fail({
        code: SQLSTATE.PROTOCOL_VIOLATION,
        message: "non-printable characters in SCRAM nonce",
      });
    }

    const nonce = clientNonce.value + (this.#serverNonce ?? randomNonce());
    const serverFirst = `r=${nonce},s=${encodeBase64(this.#verifier.salt)},i=${this.#verifier.iterations}`;
    this.#state = {
      step: "sent-server-first",
      gs2Header,
      plus,
      nonce,
      authPrefix: `${clientFirstBare},${serverFirst},`,
    };
    return { serverFirst: encoder.encode(serverFirst) };
  }

  /**
   * Reads client-final-message: checks channel binding, nonce and proof, and returns server-final-message
   * with the ServerSignature, plus the ClientKey recovered from the proof (verified: SHA-256(ClientKey)
   * equals StoredKey).
   */
  async handleFinal(
    clientFinal: Uint8Array,
  ): Promise<{ serverFinal: Uint8Array; clientKey: Uint8Array } | { error: ScramError }> {
    const state = this.#state;
    if (state.step !== "sent-server-first") {
      return this.#fail(malformed("SASLResponse arrived before the exchange started or after it ended."));
    }
    const text = decodeUtf8(clientFinal);
    if (text === undefined) return this.#fail(malformed("client-final-message is not valid UTF-8."));

    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const attributes = splitAttributes(text);
    if (attributes === undefined) {
      return this.#fail(malformed("client-final-message is not a list of attributes."));
    }
    const binding = attributes[0];
    const nonce = attributes[1];
    if (binding?.name !== "c") {
      return this.#fail(malformed('Expected attribute "c" in client-final-message.'));
    }
    if (nonce?.name !== "r") return this.#fail(malformed('Expected attribute "r" in client-final-message.'));
    const proofIndex = attributes.findIndex((attribute, index) => index >= 2 && attribute.name === "p");
    if (proofIndex < 0) return this.#fail(malformed("Could not find proof in client-final-message."));
    if (proofIndex !== attributes.length - 1) {
      return this.#fail(malformed("Garbage found at the end of client-final-message."));
    }
    const withoutProof = text.split(",").slice(0, proofIndex).join(",");

    const cbindInput = state.plus
      ? concat(encoder.encode(state.gs2Header), this.#channelBinding ?? new Uint8Array())
      : encoder.encode(state.gs2Header);
    if (binding.value !== encodeBase64(cbindInput)) {
      return this.#fail(
        state.plus
          ? {
            code: SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
            message: "SCRAM channel binding check failed",
          }
          : {
            code: SQLSTATE.PROTOCOL_VIOLATION,
            message: "unexpected SCRAM channel-binding attribute in client-final-message",
          },
      );
    }
    if (nonce.value !== state.nonce) {
      return this.#fail({
        code: SQLSTATE.PROTOCOL_VIOLATION,
        message: "invalid SCRAM response",
        detail: "Nonce does not match.",
      });
    }
    const proof = decodeBase64(attributes[proofIndex]!.value);
    if (proof === undefined || proof.length !== SCRAM_KEY_LENGTH) {
      return this.#fail(malformed("Malformed proof in client-final-message."));
    }

    const authMessage = state.authPrefix + withoutProof;
    const clientSignature = await hmacSha256(this.#verifier.storedKey, authMessage);
    const clientKey = xorBytes(proof, clientSignature);
    const matches = constantTimeEqual(await sha256(clientKey), this.#verifier.storedKey);
    if (!matches || this.#doomed) {
      return this.#fail(passwordFailed(this.#user));
    }
    const serverSignature = await hmacSha256(this.#verifier.serverKey, authMessage);
    this.#state = { step: "finished" };
    return { serverFinal: encoder.encode(`v=${encodeBase64(serverSignature)}`), clientKey };
  }

  #fail(error: ScramError): { error: ScramError } {
    this.#state = { step: "finished" };
    return { error };
  }
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Client text for an error message: printable ASCII only, at most 64 characters. */
function sanitize(text: string): string {
  return text.slice(0, 64).replace(/[^\x20-\x7E]/g, "?");
}
