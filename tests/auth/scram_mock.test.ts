import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { MOCK_ITERATIONS, MOCK_SALT_LENGTH, ScramMock } from "../../src/auth/scram_mock.ts";
import { ScramServerExchange } from "../../src/auth/scram_server.ts";
import type { ScramVerifier } from "../../src/auth/scram_verifier.ts";
import { PasswordScramClient } from "../support/password_scram_client.ts";

const SECRET = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** Runs the independent password client against an exchange; resolves with its outcome. */
async function exchange(verifier: ScramVerifier, password: string, doomed: boolean) {
  const server = new ScramServerExchange(verifier, { user: "alice", offerPlus: false, doomed });
  const client = new PasswordScramClient({ password });
  const first = await server.handleInitial("SCRAM-SHA-256", client.clientFirst());
  if ("error" in first) return { stage: "initial", error: first.error };
  const serverFirst = new TextDecoder().decode(first.serverFirst);
  const final = await server.handleFinal(client.clientFinal(first.serverFirst));
  return "error" in final ? { stage: "final", serverFirst, error: final.error } : { stage: "ok", serverFirst };
}

describe("ScramMock", () => {
  it("verifier() gives a user the same salt every time, and other users other salts", async () => {
    const mock = new ScramMock(SECRET);
    const nobody = await mock.verifier("nobody");
    assert.equal(nobody.salt.length, MOCK_SALT_LENGTH);
    assert.equal(MOCK_SALT_LENGTH, 16, "PostgreSQL's SCRAM_DEFAULT_SALT_LEN");
    assert.equal(nobody.iterations, 4096);
    assert.equal(MOCK_ITERATIONS, 4096);
    assert.equal(hex((await mock.verifier("nobody")).salt), hex(nobody.salt), "same user, same salt");
    assert.equal(hex((await new ScramMock(SECRET).verifier("nobody")).salt), hex(nobody.salt), "same secret, same salt");
    const others = await Promise.all(["nobody2", "Nobody", "", "alice"].map((user) => mock.verifier(user)));
    const salts = new Set([nobody, ...others].map((verifier) => hex(verifier.salt)));
    assert.equal(salts.size, 5, "every user name has its own salt");
    assert.notEqual(hex((await new ScramMock().verifier("nobody")).salt), hex(nobody.salt), "another secret, another salt");
  });

  it("refuses a secret shorter than 16 bytes", () => {
    assert.throws(() => new ScramMock(new Uint8Array(15)), RangeError);
  });

  it("a doomed exchange fails even the right password with the wrong-password error, after a normal server-first", async () => {
    const verifier = await makeScramVerifier("right", Uint8Array.from({ length: 16 }, (_, i) => i), 4096);
    assert.equal((await exchange(verifier, "right", false)).stage, "ok", "the verifier works undoomed");
    const wrong = await exchange(verifier, "wrong", false);
    const doomed = await exchange(verifier, "right", true);
    assert.equal(doomed.stage, "final");
    assert.deepEqual(doomed.error, wrong.error);
    assert.deepEqual(doomed.error, { code: "28P01", message: 'password authentication failed for user "alice"' });
    assert.match(doomed.serverFirst!, /^r=[^,]+,s=AAECAwQFBgcICQoLDA0ODw==,i=4096$/);
  });

  it("a mock verifier's server-first looks like a real one: 24 base64 characters of salt, 4096 iterations", async () => {
    const mock = new ScramMock(SECRET);
    const verifier = await mock.verifier("nobody");
    const result = await exchange(verifier, "anything", true);
    assert.equal(result.stage, "final");
    assert.deepEqual(result.error, { code: "28P01", message: 'password authentication failed for user "alice"' });
    const salt = /,s=([^,]+),i=4096$/.exec(result.serverFirst!)?.[1];
    assert.equal(salt, btoa(String.fromCharCode(...verifier.salt)));
    assert.match(salt!, /^[A-Za-z0-9+/]{22}==$/);
  });
});
