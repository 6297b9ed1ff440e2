/**
 * The one case a relayed SCRAM exchange cannot survive: pgrelay terminates the client's TLS and runs its
 * own TLS to the server. SCRAM-SHA-256-PLUS then binds the client's proof to pgrelay's certificate while
 * the server checks it against its own, and no byte of the exchange may be changed. Rather than let the
 * server answer "channel binding check failed", pgrelay stops the attempt and says why and what to do.
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { ClientError } from "../protocol/client_error.ts";
import { authenticationSasl } from "../protocol/auth_messages.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";

const decoder = new TextDecoder();

const HINT = "Connect with channel_binding=disable, or configure pgrelay with tls.mode: passthrough (end-to-end TLS), " +
  "upstream_tls.mode: disable (only on a private link), or auth.mode: scram (pgrelay authenticates clients itself).";

/**
 * Reads a SASLInitialResponse body (mechanism, length, client-first-message) against the mechanisms the
 * server offered; returns the error to send when the exchange is bound to fail, else undefined.
 */
export function channelBindingProblem(offered: readonly string[], body: Uint8Array): ClientError | undefined {
  if (!offered.includes("SCRAM-SHA-256-PLUS")) return undefined;
  const end = body.indexOf(0);
  if (end < 0) return undefined;
  const mechanism = decoder.decode(body.subarray(0, end));
  const gs2Flag = body.length > end + 5 ? String.fromCharCode(body[end + 5]!) : "";
  if (mechanism === "SCRAM-SHA-256-PLUS") {
    return new ClientError({
      severity: "FATAL",
      code: SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
      message: "channel binding cannot work through pgrelay here: your TLS session ends at pgrelay and pgrelay " +
        "opens its own TLS session to the server, so SCRAM-SHA-256-PLUS would bind two different certificates",
      hint: HINT,
    });
  }
  if (mechanism === "SCRAM-SHA-256" && gs2Flag === "y") {
    return new ClientError({
      severity: "FATAL",
      code: SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
      message: "the server offers channel binding (SCRAM-SHA-256-PLUS) but the client declined it while " +
        "supporting it; the server would reject this as a downgrade",
      hint: HINT,
    });
  }
  return undefined;
}


/**
 * AuthenticationSASL without SCRAM-SHA-256-PLUS, for a client whose own connection is not encrypted:
 * libpq refuses a -PLUS offer on such a connection, and the server accepts the plain mechanism from a
 * client that says (gs2 flag "n") it cannot bind. The SCRAM proof does not cover the offered list, so
 * this one rewrite keeps the exchange intact.
 */
export function saslOfferWithoutChannelBinding(mechanisms: readonly string[]): Uint8Array {
  return authenticationSasl(mechanisms.filter((m) => m !== "SCRAM-SHA-256-PLUS"));
}

export const PLAINTEXT_CLIENT_BINDING_ERROR = new ClientError({
  severity: "FATAL",
  code: SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
  message: "the server offers channel binding (SCRAM-SHA-256-PLUS) over pgrelay's TLS connection, which " +
    "libpq refuses on an unencrypted client connection, and pgrelay could not remove the offer",
  hint: HINT,
});
