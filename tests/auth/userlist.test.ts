import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64 } from "../../src/auth/base64.ts";
import { lookupVerifier, parseUserlist } from "../../src/auth/userlist.ts";

const KEY = encodeBase64(new Uint8Array(32).fill(7));
const SCRAM = `SCRAM-SHA-256$4096:c2FsdA==$${KEY}:${KEY}`;
const MD5 = "md5" + "ab".repeat(16);

describe("parseUserlist()", () => {
  it("reads quoted pairs, skipping blank and comment lines and trailing fields", () => {
    const users = parseUserlist([
      "; PgBouncer comment",
      "# hash comment",
      "",
      "   ",
      `"alice" "${SCRAM}"`,
      `  "bob"\t"${MD5}" "ignored third column"`,
      `"carol" "plain secret"\r`,
      `"da""ve" "pa""ss"`,
      `"erin" ""`,
    ].join("\n"));
    assert.deepEqual([...users], [
      ["alice", SCRAM],
      ["bob", MD5],
      ["carol", "plain secret"],
      ['da"ve', 'pa"ss'],
      ["erin", ""],
    ]);
  });

  it("accepts an empty file and a BOM", () => {
    assert.equal(parseUserlist("").size, 0);
    assert.deepEqual([...parseUserlist('\uFEFF"u" "p"\n')], [["u", "p"]]);
  });

  const bad: Array<[string, string, RegExp]> = [
    ["an unquoted user", `alice "x"`, /line 2: expected "user" "password"/],
    ["an unterminated user", `"alice`, /line 2: expected "user" "password"/],
    ["a missing password", `"alice"`, /line 2: expected whitespace after the user name/],
    ["an unquoted password", `"alice" secret`, /line 2: expected the password or verifier in double quotes/],
    ["an unterminated password", `"alice" "secret`, /line 2: expected the password or verifier/],
    ["no space between fields", `"alice""x"`, /line 2: expected whitespace/],
    ["an empty user", `"" "x"`, /line 2: empty user name/],
    [
      "a malformed SCRAM verifier",
      `"alice" "SCRAM-SHA-256$4096:c2FsdA==$abc"`,
      /line 2: user "alice": invalid SCRAM verifier/,
    ],
    ["a duplicate user", `"u" "a"\n"u" "b"`, /line 3: user "u" is already listed on line 2/],
  ];
  for (const [name, line, message] of bad) {
    it(`rejects ${name}, naming the line`, () => {
      assert.throws(() => parseUserlist(`; header\n${line}\n`), (err: unknown) => {
        assert.ok(err instanceof SyntaxError, String(err));
        assert.match(err.message, message);
        assert.ok(!err.message.includes("secret"), "passwords must not be echoed");
        return true;
      });
    });
  }
});

describe("lookupVerifier()", () => {
  const users = parseUserlist(`"s" "${SCRAM}"\n"m" "${MD5}"\n"p" "pw"\n"e" ""\n`);

  it("classifies scram, md5, plain and missing entries", () => {
    const scram = lookupVerifier(users, "s");
    assert.equal(scram.kind, "scram");
    assert.equal(scram.kind === "scram" && scram.verifier.iterations, 4096);
    assert.deepEqual(lookupVerifier(users, "m"), { kind: "md5", hash: MD5 });
    assert.deepEqual(lookupVerifier(users, "p"), { kind: "plain", password: "pw" });
    assert.deepEqual(lookupVerifier(users, "e"), { kind: "missing" });
    assert.deepEqual(lookupVerifier(users, "nobody"), { kind: "missing" });
  });

  it("throws a RangeError for a malformed SCRAM verifier in a hand-made map", () => {
    assert.throws(() => lookupVerifier(new Map([["x", "SCRAM-SHA-256$1:AA==$AA==:AA=="]]), "x"), RangeError);
  });
});
