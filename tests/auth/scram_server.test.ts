import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { type ScramError, ScramServerExchange } from "../../src/auth/scram_server.ts";
import type { ScramVerifier } from "../../src/auth/scram_verifier.ts";
import { passwordKeys, PasswordScramClient } from "../support/password_scram_client.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const PASSWORD = "correct horse";
const SALT = Uint8Array.from({ length: 16 }, (_, i) => i * 7);
const ITERATIONS = 4096;
const FAKE_CERT_HASH = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
const PLUS_HEADER = "p=tls-server-end-point,,";

const verifierPromise = makeScramVerifier(PASSWORD, SALT, ITERATIONS);

interface RunOptions {
  password?: string;
  mechanism?: string;
  offerPlus?: boolean;
  serverBinding?: Uint8Array;
  clientHeader?: string;
  clientBinding?: Uint8Array;
  forceC?: string;
}

/** Runs the independent password client against ScramServerExchange. */
async function run(
  options: RunOptions = {},
): Promise<{ clientKey: Uint8Array } | { error: ScramError; stage: string }> {
  const verifier = await verifierPromise;
  const offerPlus = options.offerPlus ?? false;
  const server = new ScramServerExchange(verifier, {
    user: "alice",
    offerPlus,
    ...(offerPlus ? { channelBinding: options.serverBinding ?? FAKE_CERT_HASH } : {}),
  });
  const client = new PasswordScramClient({
    password: options.password ?? PASSWORD,
    ...(options.clientHeader === undefined ? {} : { gs2Header: options.clientHeader }),
    ...(options.clientBinding === undefined ? {} : { channelBinding: options.clientBinding }),
    ...(options.forceC === undefined ? {} : { forceChannelBindingAttribute: options.forceC }),
  });
  const first = await server.handleInitial(options.mechanism ?? "SCRAM-SHA-256", client.clientFirst());
  if ("error" in first) return { error: first.error, stage: "initial" };
  const final = await server.handleFinal(client.clientFinal(first.serverFirst));
  if ("error" in final) return { error: final.error, stage: "final" };
  client.verifyServerFinal(final.serverFinal);
  return { clientKey: final.clientKey };
}

function expectError(
  result: Awaited<ReturnType<typeof run>>,
  stage: string,
  code: string,
  message: RegExp,
): void {
  assert.ok("error" in result, "expected an error");
  assert.equal(result.stage, stage);
  assert.equal(result.error.code, code);
  assert.match(result.error.message, message);
}

describe("ScramServerExchange", () => {
  it("lists mechanisms, -PLUS first when offered", async () => {
    const verifier = await verifierPromise;
    assert.deepEqual(new ScramServerExchange(verifier, { user: "u", offerPlus: false }).mechanisms(), [
      "SCRAM-SHA-256",
    ]);
    assert.deepEqual(
      new ScramServerExchange(verifier, { user: "u", offerPlus: true, channelBinding: FAKE_CERT_HASH })
        .mechanisms(),
      ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
    );
    assert.throws(() => new ScramServerExchange(verifier, { user: "u", offerPlus: true }), RangeError);
  });

  it("reproduces RFC 7677's exchange byte for byte", async () => {
    const salt = Uint8Array.from(atob("W22ZaJ0SNY7soEsUEjb6gQ=="), (ch) => ch.charCodeAt(0));
    const verifier = await makeScramVerifier("pencil", salt, 4096);
    const server = new ScramServerExchange(verifier, {
      user: "user",
      offerPlus: false,
      serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    });
    const first = await server.handleInitial("SCRAM-SHA-256", bytes("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
    assert.ok("serverFirst" in first);
    assert.equal(
      decoder.decode(first.serverFirst),
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    );
    const final = await server.handleFinal(bytes(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    ));
    assert.ok("serverFinal" in final, JSON.stringify(final));
    assert.equal(decoder.decode(final.serverFinal), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    assert.deepEqual(final.clientKey, passwordKeys("pencil", salt, 4096).clientKey);
  });

  it("authenticates a password client and recovers its ClientKey", async () => {
    const result = await run();
    assert.ok("clientKey" in result, JSON.stringify(result));
    assert.deepEqual(result.clientKey, passwordKeys(PASSWORD, SALT, ITERATIONS).clientKey);
  });

  it("accepts gs2 flag y when -PLUS is not offered", async () => {
    const result = await run({ clientHeader: "y,," });
    assert.ok("clientKey" in result, JSON.stringify(result));
  });

  it("accepts a plain SCRAM-SHA-256 client on a connection that offers -PLUS", async () => {
    const result = await run({ offerPlus: true });
    assert.ok("clientKey" in result, JSON.stringify(result));
  });

  it("authenticates SCRAM-SHA-256-PLUS bound to pgrelay's certificate hash", async () => {
    const result = await run({
      offerPlus: true,
      mechanism: "SCRAM-SHA-256-PLUS",
      clientHeader: PLUS_HEADER,
      clientBinding: FAKE_CERT_HASH,
    });
    assert.ok("clientKey" in result, JSON.stringify(result));
    assert.deepEqual(result.clientKey, passwordKeys(PASSWORD, SALT, ITERATIONS).clientKey);
  });

  it("rejects -PLUS bound to a different certificate (channel binding check failed)", async () => {
    const other = new Uint8Array(FAKE_CERT_HASH);
    other[0] = other[0]! ^ 1;
    const result = await run({
      offerPlus: true,
      mechanism: "SCRAM-SHA-256-PLUS",
      clientHeader: PLUS_HEADER,
      clientBinding: other,
    });
    expectError(result, "final", "28000", /^SCRAM channel binding check failed$/);
  });

  it("rejects a wrong password with 28P01 and PostgreSQL's wording", async () => {
    const result = await run({ password: "wrong" });
    expectError(result, "final", "28P01", /^password authentication failed for user "alice"$/);
  });

  it("rejects a wrong password over -PLUS too", async () => {
    const result = await run({
      password: "wrong",
      offerPlus: true,
      mechanism: "SCRAM-SHA-256-PLUS",
      clientHeader: PLUS_HEADER,
      clientBinding: FAKE_CERT_HASH,
    });
    expectError(result, "final", "28P01", /password authentication failed/);
  });

  it("rejects the y flag while -PLUS is offered (downgrade)", async () => {
    const result = await run({ offerPlus: true, clientHeader: "y,," });
    expectError(result, "initial", "28000", /SCRAM channel binding negotiation error/);
  });

  it("rejects -PLUS without channel binding data, and binding data without -PLUS", async () => {
    expectError(
      await run({ offerPlus: true, mechanism: "SCRAM-SHA-256-PLUS" }),
      "initial",
      "08P01",
      /malformed SCRAM message/,
    );
    expectError(
      await run({ offerPlus: true, clientHeader: PLUS_HEADER, clientBinding: FAKE_CERT_HASH }),
      "initial",
      "08P01",
      /malformed SCRAM message/,
    );
  });

  it("rejects -PLUS when it was not offered, and unknown mechanisms", async () => {
    expectError(
      await run({
        mechanism: "SCRAM-SHA-256-PLUS",
        clientHeader: PLUS_HEADER,
        clientBinding: FAKE_CERT_HASH,
      }),
      "initial",
      "08P01",
      /invalid SASL authentication mechanism/,
    );
    expectError(
      await run({ mechanism: "SCRAM-SHA-1" }),
      "initial",
      "08P01",
      /invalid SASL authentication mechanism/,
    );
  });

  it("rejects other channel-binding types", async () => {
    const result = await run({
      offerPlus: true,
      mechanism: "SCRAM-SHA-256-PLUS",
      clientHeader: "p=tls-unique,,",
      clientBinding: FAKE_CERT_HASH,
    });
    expectError(result, "initial", "08P01", /unsupported SCRAM channel-binding type "tls-unique"/);
  });

  it("rejects a c= attribute that does not repeat the gs2 header", async () => {
    expectError(
      await run({ forceC: "eSws" }),
      "final",
      "08P01",
      /unexpected SCRAM channel-binding attribute/,
    );
  });

  describe("malformed client messages", () => {
    async function initial(text: string): Promise<ScramError | undefined> {
      const server = new ScramServerExchange(await verifierPromise, { user: "u", offerPlus: false });
      const result = await server.handleInitial("SCRAM-SHA-256", bytes(text));
      return "error" in result ? result.error : undefined;
    }
    const cases: Array<[string, string, string, RegExp]> = [
      ["no gs2 header", "n=,r=abc", "08P01", /malformed/],
      ["bad flag", "x,,n=,r=abc", "08P01", /malformed/],
      ["authzid", "n,a=bob,n=,r=abc", "0A000", /authorization identity/],
      ["mandatory extension", "n,,m=ext,n=,r=abc", "0A000", /unsupported SCRAM extension/],
      ["no user attribute", "n,,r=abc", "08P01", /malformed/],
      ["no nonce", "n,,n=", "08P01", /malformed/],
      ["empty nonce", "n,,n=,r=", "08P01", /non-printable characters in SCRAM nonce/],
      ["non-printable nonce", "n,,n=,r=a\u00e9b", "08P01", /non-printable characters in SCRAM nonce/],
    ];
    for (const [name, text, code, message] of cases) {
      it(`client-first with ${name}`, async () => {
        const error = await initial(text);
        assert.ok(error, "expected an error");
        assert.equal(error.code, code);
        assert.match(error.message, message);
      });
    }

    it("rejects invalid UTF-8", async () => {
      const server = new ScramServerExchange(await verifierPromise, { user: "u", offerPlus: false });
      const result = await server.handleInitial("SCRAM-SHA-256", new Uint8Array([0x6e, 0x2c, 0x2c, 0xff]));
      assert.ok("error" in result);
    });

    async function final(mutate: (nonce: string) => string): Promise<ScramError | undefined> {
      const server = new ScramServerExchange(await verifierPromise, { user: "u", offerPlus: false });
      const first = await server.handleInitial("SCRAM-SHA-256", bytes("n,,n=,r=abc"));
      assert.ok("serverFirst" in first);
      const nonce = decoder.decode(first.serverFirst).split(",")[0]!.slice(2);
      const result = await server.handleFinal(bytes(mutate(nonce)));
      return "error" in result ? result.error : undefined;
    }
    const proof = btoa("x".repeat(32));
    const finals: Array<[string, (nonce: string) => string, RegExp]> = [
      ["no proof", (n) => `c=biws,r=${n}`, /malformed/],
      ["wrong nonce", (n) => `c=biws,r=${n}x,p=${proof}`, /invalid SCRAM response/],
      ["short proof", (n) => `c=biws,r=${n},p=${btoa("x")}`, /malformed/],
      ["proof not base64", (n) => `c=biws,r=${n},p=@@@@`, /malformed/],
      ["attributes out of order", (n) => `r=${n},c=biws,p=${proof}`, /malformed/],
      ["garbage after the proof", (n) => `c=biws,r=${n},p=${proof},x=1`, /malformed/],
    ];
    for (const [name, build, message] of finals) {
      it(`client-final with ${name}`, async () => {
        const error = await final(build);
        assert.ok(error, "expected an error");
        assert.equal(error.code, "08P01");
        assert.match(error.message, message);
      });
    }
  });

  it("ignores extensions before the proof (then checks the proof: wrong here)", async () => {
    const server = new ScramServerExchange(await verifierPromise, { user: "u", offerPlus: false });
    const first = await server.handleInitial("SCRAM-SHA-256", bytes("n,,n=,r=abc,x=ext"));
    assert.ok("serverFirst" in first);
    const nonce = decoder.decode(first.serverFirst).split(",")[0]!.slice(2);
    const result = await server.handleFinal(bytes(`c=biws,r=${nonce},x=1,p=${btoa("x".repeat(32))}`));
    assert.ok("error" in result);
    assert.equal(result.error.code, "28P01");
  });

  it("refuses messages out of order and after an error", async () => {
    const verifier: ScramVerifier = await verifierPromise;
    const early = new ScramServerExchange(verifier, { user: "u", offerPlus: false });
    assert.ok("error" in await early.handleFinal(bytes("c=biws,r=x,p=AA==")));

    const server = new ScramServerExchange(verifier, { user: "u", offerPlus: false });
    assert.ok("error" in await server.handleInitial("SCRAM-SHA-256", bytes("bogus")));
    assert.ok("error" in await server.handleInitial("SCRAM-SHA-256", bytes("n,,n=,r=abc")));
  });

  it("uses a fresh random server nonce each time", async () => {
    const verifier = await verifierPromise;
    const nonces = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const server = new ScramServerExchange(verifier, { user: "u", offerPlus: false });
      const first = await server.handleInitial("SCRAM-SHA-256", bytes("n,,n=,r=abc"));
      assert.ok("serverFirst" in first);
      const nonce = decoder.decode(first.serverFirst).split(",")[0]!;
      assert.match(nonce, /^r=abc[A-Za-z0-9+/]{24}$/);
      nonces.add(nonce);
    }
    assert.equal(nonces.size, 5);
  });
});
