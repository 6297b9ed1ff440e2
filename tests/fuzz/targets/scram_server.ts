/**
 * The SCRAM server side: SASLInitialResponse's client-first-message and SASLResponse's
 * client-final-message from a client. Properties: nothing is thrown (every problem is returned as a
 * ScramError with a SQLSTATE); a ClientKey is handed over only with a proof that matches the verifier.
 */
import { SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramServerExchange } from "../../../src/auth/scram_server.ts";
import { sha256 } from "../../../src/auth/scram_crypto.ts";
import { CHANNEL_BINDING, scramMaterial, SERVER_NONCE, unpackMessages } from "./scram_fixture.ts";
import { check, type FuzzTarget, onlyDocumented } from "../target.ts";

const MECHANISMS = [SCRAM_SHA_256, SCRAM_SHA_256_PLUS, "SCRAM-SHA-1", ""];

export const scramServerTarget: FuzzTarget = {
  name: "scram_server",
  maxLength: 2048,
  dictionary: [
    "n,,",
    "y,,",
    "p=tls-server-end-point,,",
    "n=",
    "r=",
    "c=",
    "p=",
    "m=",
    "a=",
    ",",
    "=",
    "==",
    "=2C",
    "biws",
    "\xff",
    "\0",
  ],
  async run(input) {
    const { verifier } = await scramMaterial();
    const { flags, first, second } = unpackMessages(input);
    const exchange = new ScramServerExchange(verifier, {
      user: "fuzz",
      offerPlus: (flags & 1) === 1,
      channelBinding: CHANNEL_BINDING,
      serverNonce: SERVER_NONCE,
      doomed: (flags & 2) === 2,
    });
    try {
      const initial = await exchange.handleInitial(MECHANISMS[(flags >> 2) & 3]!, first);
      if ("error" in initial) {
        check(
          /^[0-9A-Z]{5}$/.test(initial.error.code) && initial.error.message !== "",
          "malformed ScramError",
        );
        return;
      }
      const final = await exchange.handleFinal(second);
      if ("error" in final) {
        check(/^[0-9A-Z]{5}$/.test(final.error.code) && final.error.message !== "", "malformed ScramError");
        return;
      }
      check((flags & 2) === 0, "a doomed exchange succeeded");
      const stored = await sha256(final.clientKey);
      check(
        stored.every((byte, i) => byte === verifier.storedKey[i]),
        "handed over a ClientKey that does not match StoredKey",
      );
      // A later message after the end is refused, not thrown.
      const again = await exchange.handleFinal(second);
      check("error" in again, "a finished exchange accepted another message");
    } catch (error) {
      onlyDocumented(error, () => false, "ScramServerExchange");
    }
  },
};
