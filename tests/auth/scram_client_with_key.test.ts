import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ScramClientWithKey } from "../../src/auth/scram_client_with_key.ts";
import { deriveScramKeys, makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { ScramServerExchange } from "../../src/auth/scram_server.ts";
import type { ScramVerifier } from "../../src/auth/scram_verifier.ts";
import { PasswordScramClient } from "../support/password_scram_client.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SALT = Uint8Array.from({ length: 16 }, (_, i) => 100 + i);

/** Client → pgrelay: the server exchange recovers the ClientKey from a password client's proof. */
async function recoverClientKey(verifier: ScramVerifier, password: string): Promise<Uint8Array> {
  const server = new ScramServerExchange(verifier, { user: "u", offerPlus: false });
  const client = new PasswordScramClient({ password });
  const first = await server.handleInitial("SCRAM-SHA-256", client.clientFirst());
  assert.ok("serverFirst" in first);
  const final = await server.handleFinal(client.clientFinal(first.serverFirst));
  assert.ok("clientKey" in final, JSON.stringify(final));
  return final.clientKey;
}

describe("ScramClientWithKey", () => {
  it("logs in to a server holding the same verifier with only the ClientKey", async () => {
    const verifier = await makeScramVerifier("s3cret", SALT, 4096);
    const clientKey = await recoverClientKey(verifier, "s3cret");
    const upstream = new ScramServerExchange(verifier, { user: "u", offerPlus: false });
    const client = new ScramClientWithKey({ clientKey, verifier });
    const initial = client.initialResponse();
    assert.equal(initial.mechanism, "SCRAM-SHA-256");
    assert.match(decoder.decode(initial.data), /^n,,n=,r=[A-Za-z0-9+/]{24}$/);
    const first = await upstream.handleInitial(initial.mechanism, initial.data);
    assert.ok("serverFirst" in first);
    const clientFinal = await client.handleContinue(first.serverFirst);
    assert.match(decoder.decode(clientFinal), /^c=biws,r=[^,]+,p=[A-Za-z0-9+/]{43}=$/);
    const final = await upstream.handleFinal(clientFinal);
    assert.ok("serverFinal" in final, JSON.stringify(final));
    assert.deepEqual(final.clientKey, clientKey);
    assert.equal(client.verified, false, "not before the server's signature");
    await client.handleFinal(final.serverFinal);
    assert.equal(client.verified, true);
  });

  it("refuses a server whose salt or iteration count differ from the auth file's verifier", async () => {
    const verifier = await makeScramVerifier("s3cret", SALT, 4096);
    const clientKey = (await deriveScramKeys("s3cret", SALT, 4096)).clientKey;
    for (
      const serverFirst of [
        "s=AAAAAAAAAAAAAAAAAAAAAA==,i=4096",
        `s=${btoa(String.fromCharCode(...SALT))},i=8192`,
      ]
    ) {
      const client = new ScramClientWithKey({ clientKey, verifier, nonce: "abc" });
      client.initialResponse();
      await assert.rejects(
        client.handleContinue(encoder.encode(`r=abcdef,${serverFirst}`)),
        /upstream server's SCRAM verifier for this user differs from the auth file's/,
      );
    }
  });

  it("refuses a ClientKey that does not belong to the verifier", async () => {
    const verifier = await makeScramVerifier("s3cret", SALT, 4096);
    const clientKey = (await deriveScramKeys("other", SALT, 4096)).clientKey;
    const client = new ScramClientWithKey({ clientKey, verifier, nonce: "abc" });
    client.initialResponse();
    const salt = btoa(String.fromCharCode(...SALT));
    await assert.rejects(
      client.handleContinue(encoder.encode(`r=abcdef,s=${salt},i=4096`)),
      /ClientKey does not match/,
    );
  });

  it("checks the server nonce and message shape", async () => {
    const verifier = await makeScramVerifier("s3cret", SALT, 4096);
    const { clientKey } = await deriveScramKeys("s3cret", SALT, 4096);
    const salt = btoa(String.fromCharCode(...SALT));
    for (
      const [text, message] of [
        [`r=xyz123,s=${salt},i=4096`, /does not extend/],
        [`r=abc,s=${salt},i=4096`, /does not extend/],
        [`s=${salt},r=abcdef,i=4096`, /malformed/],
        [`r=abcdef,s=${salt},i=0`, /malformed/],
        [`m=x,r=abcdef,s=${salt},i=4096`, /unsupported extension/],
      ] as const
    ) {
      const client = new ScramClientWithKey({ clientKey, verifier, nonce: "abc" });
      client.initialResponse();
      await assert.rejects(client.handleContinue(encoder.encode(text)), message);
    }
    assert.throws(() => new ScramClientWithKey({ clientKey: new Uint8Array(31), verifier }), RangeError);
  });

  it("rejects a forged server signature and a SCRAM e= error", async () => {
    const verifier = await makeScramVerifier("s3cret", SALT, 4096);
    const clientKey = await recoverClientKey(verifier, "s3cret");
    for (
      const [serverFinal, message] of [
        [`v=${btoa("x".repeat(32))}`, /server signature did not verify/],
        ["e=invalid-proof", /upstream SCRAM error: invalid-proof/],
        ["garbage", /malformed SCRAM server-final-message/],
      ] as const
    ) {
      const upstream = new ScramServerExchange(verifier, { user: "u", offerPlus: false });
      const client = new ScramClientWithKey({ clientKey, verifier });
      const initial = client.initialResponse();
      const first = await upstream.handleInitial(initial.mechanism, initial.data);
      assert.ok("serverFirst" in first);
      await client.handleContinue(first.serverFirst);
      await assert.rejects(client.handleFinal(encoder.encode(serverFinal)), message);
      assert.equal(client.verified, false);
    }
  });

  it("refuses steps out of order", async () => {
    const verifier = await makeScramVerifier("s3cret", SALT, 4096);
    const { clientKey } = await deriveScramKeys("s3cret", SALT, 4096);
    const client = new ScramClientWithKey({ clientKey, verifier });
    await assert.rejects(client.handleContinue(encoder.encode("r=x,s=AA==,i=1")), /unexpected/);
    await assert.rejects(client.handleFinal(encoder.encode("v=AA==")), /unexpected/);
    client.initialResponse();
    assert.throws(() => client.initialResponse(), /already sent/);
  });
});
