/**
 * The upstream SCRAM clients against a hostile server: server-first-message and server-final-message.
 * Properties: only plain Errors (the clients' documented way to refuse) escape; the with-key client
 * succeeds only with the ServerSignature computed independently here; the password client never derives
 * keys with an iteration count past a bound (inputs beyond it only check that it refuses or would run).
 */
import { ScramClientWithKey } from "../../../src/auth/scram_client_with_key.ts";
import { ScramClientWithPassword } from "../../../src/auth/scram_client_with_password.ts";
import { decodeBase64, encodeBase64 } from "../../../src/auth/base64.ts";
import { hmacSha256 } from "../../../src/auth/scram_crypto.ts";
import { CLIENT_NONCE, scramMaterial, unpackMessages } from "./scram_fixture.ts";
import { check, type FuzzTarget, onlyDocumented } from "../target.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const plainError = (error: unknown) => error instanceof Error && error.constructor === Error;

const DICTIONARY = [
  "r=",
  "s=",
  "i=",
  "v=",
  "e=",
  "m=",
  ",",
  "=",
  "==",
  "i=4",
  "i=0",
  "i=-1",
  "i=4096",
  "i=99999999999",
  "invalid-proof",
  "\0",
  "\xff",
];

export const scramClientWithKeyTarget: FuzzTarget = {
  name: "scram_client_with_key",
  maxLength: 2048,
  dictionary: [...DICTIONARY, CLIENT_NONCE],
  async run(input) {
    const { keys, verifier } = await scramMaterial();
    const { first, second } = unpackMessages(input);
    const client = new ScramClientWithKey({ clientKey: keys.clientKey, verifier, nonce: CLIENT_NONCE });
    client.initialResponse();
    let finalMessage: Uint8Array;
    try {
      finalMessage = await client.handleContinue(first);
    } catch (error) {
      onlyDocumented(error, plainError, "ScramClientWithKey.handleContinue");
      return;
    }
    try {
      await client.handleFinal(second);
    } catch (error) {
      onlyDocumented(error, plainError, "ScramClientWithKey.handleFinal");
      return;
    }
    // It believed the server: the signature must be the one only a holder of ServerKey can make. (The
    // client, unlike libpq, ignores attributes after v=, and base64 with nonzero padding bits decodes to
    // the same bytes: neither lets a server skip the proof.)
    const withoutProof = decoder.decode(finalMessage).replace(/,p=[^,]*$/, "");
    const authMessage = `n=,r=${CLIENT_NONCE},${decoder.decode(first)},${withoutProof}`;
    const expected = await hmacSha256(keys.serverKey, authMessage);
    const sent = /^v=([^,]*)/.exec(decoder.decode(second))?.[1];
    const signature = sent === undefined ? undefined : decodeBase64(sent);
    check(
      signature !== undefined && signature.length === expected.length &&
        signature.every((byte, i) => byte === expected[i]),
      `accepted server-final ${JSON.stringify(decoder.decode(second).slice(0, 80))}, expected v=${
        encodeBase64(expected)
      }`,
    );
  },
};

/** Iteration counts above this are not run through PBKDF2 here (each would take long). */
const MAX_FUZZ_ITERATIONS = 64;
const NONCE_PLACEHOLDER = encoder.encode("%NONCE%");

export const scramClientWithPasswordTarget: FuzzTarget = {
  name: "scram_client_with_password",
  maxLength: 2048,
  dictionary: [...DICTIONARY, "%NONCE%"],
  async run(input) {
    const { first, second } = unpackMessages(input);
    const client = new ScramClientWithPassword("fuzz-password");
    const nonce = decoder.decode(client.initialResponse().data).replace(/^n,,n=,r=/, "");
    const serverFirst = encoder.encode(
      decoder.decode(first).replaceAll(decoder.decode(NONCE_PLACEHOLDER), nonce),
    );
    const iterations = /(?:^|,)i=([^,]*)/.exec(decoder.decode(serverFirst))?.[1];
    if (iterations !== undefined && Number(iterations) > MAX_FUZZ_ITERATIONS) return;
    try {
      await client.handleContinue(serverFirst);
      await client.handleFinal(second);
    } catch (error) {
      onlyDocumented(error, plainError, "ScramClientWithPassword");
    }
  },
};
