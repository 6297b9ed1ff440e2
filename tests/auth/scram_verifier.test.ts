import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64 } from "../../src/auth/base64.ts";
import { deriveScramKeys, makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { formatScramVerifier, isMd5Verifier, parseScramVerifier } from "../../src/auth/scram_verifier.ts";
import { passwordKeys } from "../support/password_scram_client.ts";

const KEY_A = encodeBase64(new Uint8Array(32).fill(1));
const KEY_B = encodeBase64(new Uint8Array(32).fill(2));
const GOOD = `SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$${KEY_A}:${KEY_B}`;

describe("parseScramVerifier()", () => {
  it("reads iterations, salt and both keys", () => {
    const v = parseScramVerifier(GOOD);
    assert.equal(v.iterations, 4096);
    assert.equal(new TextDecoder().decode(v.salt), "saltsaltsalt");
    assert.deepEqual(v.storedKey, new Uint8Array(32).fill(1));
    assert.deepEqual(v.serverKey, new Uint8Array(32).fill(2));
    assert.equal(formatScramVerifier(v), GOOD);
  });

  const bad: Array<[string, string, RegExp]> = [
    ["md5 hash", "md5" + "0".repeat(32), /does not start with "SCRAM-SHA-256\$"/],
    ["other mechanism", `SCRAM-SHA-1$4096:c2FsdA==$${KEY_A}:${KEY_B}`, /does not start with/],
    ["missing keys section", "SCRAM-SHA-256$4096:c2FsdA==", /2 '\$'-separated sections instead of 3/],
    ["extra section", `SCRAM-SHA-256$4096:c2FsdA==$${KEY_A}:${KEY_B}$x`, /4 '\$'-separated sections/],
    ["no salt separator", `SCRAM-SHA-256$4096$${KEY_A}:${KEY_B}`, /"<iterations>:<salt>" expected/],
    ["one key", `SCRAM-SHA-256$4096:c2FsdA==$${KEY_A}`, /"<StoredKey>:<ServerKey>" expected/],
    ["zero iterations", `SCRAM-SHA-256$0:c2FsdA==$${KEY_A}:${KEY_B}`, /iteration count "0"/],
    ["negative iterations", `SCRAM-SHA-256$-1:c2FsdA==$${KEY_A}:${KEY_B}`, /iteration count "-1"/],
    ["huge iterations", `SCRAM-SHA-256$99999999999:c2FsdA==$${KEY_A}:${KEY_B}`, /not an integer from 1/],
    ["empty salt", `SCRAM-SHA-256$4096:$${KEY_A}:${KEY_B}`, /salt is not non-empty base64/],
    ["salt not base64", `SCRAM-SHA-256$4096:c2Fsd!==$${KEY_A}:${KEY_B}`, /salt is not non-empty base64/],
    ["short StoredKey", `SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:${KEY_B}`, /StoredKey is 4 bytes, expected 32/],
    ["ServerKey not base64", `SCRAM-SHA-256$4096:c2FsdA==$${KEY_A}:###`, /ServerKey is not base64/],
  ];
  for (const [name, text, message] of bad) {
    it(`rejects ${name} with a RangeError`, () => {
      assert.throws(() => parseScramVerifier(text), (err: unknown) => {
        assert.ok(err instanceof RangeError, String(err));
        assert.match(err.message, message);
        assert.ok(!err.message.includes(KEY_A) && !err.message.includes(KEY_B), "keys must not be echoed");
        return true;
      });
    });
  }
});

describe("isMd5Verifier()", () => {
  it("accepts md5 + 32 lowercase hex digits only", () => {
    assert.equal(isMd5Verifier("md5" + "0123456789abcdef".repeat(2)), true);
    assert.equal(isMd5Verifier("md5" + "0123456789ABCDEF".repeat(2)), false);
    assert.equal(isMd5Verifier("md5" + "a".repeat(31)), false);
    assert.equal(isMd5Verifier("md5" + "a".repeat(33)), false);
    assert.equal(isMd5Verifier("MD5" + "a".repeat(32)), false);
    assert.equal(isMd5Verifier("md5-password"), false);
    assert.equal(isMd5Verifier(GOOD), false);
  });
});

describe("makeScramVerifier() / deriveScramKeys()", () => {
  it("matches RFC 7677's test vector keys (pencil, 4096 iterations)", async () => {
    const salt = Uint8Array.from(atob("W22ZaJ0SNY7soEsUEjb6gQ=="), (ch) => ch.charCodeAt(0));
    const keys = await deriveScramKeys("pencil", salt, 4096);
    assert.deepEqual(keys, passwordKeys("pencil", salt, 4096));
    const verifier = await makeScramVerifier("pencil", salt, 4096);
    assert.deepEqual(parseScramVerifier(formatScramVerifier(verifier)), verifier);
  });

  it("rejects a non-positive iteration count", async () => {
    await assert.rejects(deriveScramKeys("x", new Uint8Array(16), 0), RangeError);
  });
});
