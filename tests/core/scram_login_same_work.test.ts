/**
 * auth.mode scram must not tell which users exist through timing: a user with a verifier, an unknown user
 * and a user listed with an md5 hash or a plaintext password cost pgrelay the same crypto work, before the
 * first auth message (where an unknown user used to pay an extra HMAC for its mock salt) and through the
 * whole exchange. Every `crypto.subtle` call is counted (the test's SCRAM client runs on node:crypto, so
 * only pgrelay's calls are seen); wall-clock medians are too noisy on a loaded machine to assert on.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { ScramMock } from "../../src/auth/scram_mock.ts";
import { formatScramVerifier } from "../../src/auth/scram_verifier.ts";
import { authenticateClient, lookupUser } from "../../src/core/scram_login.ts";
import { makeTestPki } from "../support/certs.ts";
import { parseBackendFrames } from "../support/backend_frames.ts";
import { saslInitialResponse, saslResponse } from "../support/frontend_frames.ts";
import { MemorySocket } from "../support/memory_socket.ts";
import { PasswordScramClient } from "../support/password_scram_client.ts";
import { waitFor } from "../support/wait.ts";

const verifier = await makeScramVerifier("right", Uint8Array.from({ length: 16 }, (_, i) => 100 + i), 4096);
const USERS = new Map([
  ["alice", formatScramVerifier(verifier)],
  ["md5_u", "md5" + "0123456789abcdef".repeat(2)],
  ["plain", "hunter2"],
]);
const MOCK = new ScramMock(new Uint8Array(32).fill(5));

/** The `crypto.subtle` methods pgrelay's SCRAM code may use; each call is recorded with its algorithm. */
const METHODS = ["importKey", "sign", "verify", "digest", "deriveBits", "deriveKey"] as const;
const subtle = crypto.subtle as unknown as Record<string, (...args: unknown[]) => unknown>;
let calls: string[] = [];

function algorithmOf(method: string, args: unknown[]): string {
  const spec = method === "importKey" ? args[2] : args[0];
  if (typeof spec === "string") return spec;
  const { name, hash } = spec as { name?: string; hash?: string | { name: string } };
  return [name, typeof hash === "string" ? hash : hash?.name].filter(Boolean).join("/");
}

/** One login through {@link authenticateClient} with a wrong password; the crypto calls before the first auth message and in all. */
async function login(
  user: string,
  certificatePem?: Uint8Array,
): Promise<{ beforeFirst: string[]; all: string[] }> {
  const client = new MemorySocket();
  calls = [];
  let beforeFirst: string[] | undefined;
  const originalWrite = client.write.bind(client);
  client.write = (bytes) => {
    beforeFirst ??= [...calls];
    return originalWrite(bytes);
  };
  const done = authenticateClient(client, user, {
    lookup: () => lookupUser(USERS, user),
    certificatePem,
    timeoutMs: 5000,
    maxBodyBytes: 65536,
    onClose: () => {},
    mock: MOCK,
  }).then(() => assert.fail("a wrong password must not log in"), (error: unknown) => error);
  const scram = new PasswordScramClient({ password: "wrong", nonce: "fixed-client-nonce" });
  const messages = () => parseBackendFrames(client.bytes);
  await waitFor(() => messages().length === 1, "AuthenticationSASL");
  client.receive(saslInitialResponse("SCRAM-SHA-256", scram.clientFirst()));
  await waitFor(() => messages().length === 2, "AuthenticationSASLContinue");
  client.receive(saslResponse(scram.clientFinal(messages()[1]!.body.subarray(4))));
  await done;
  return { beforeFirst: beforeFirst ?? [], all: calls };
}

describe("auth.mode scram: the same work for every user", () => {
  before(() => {
    for (const method of METHODS) {
      const original = subtle[method]!;
      subtle[method] = function (this: unknown, ...args: unknown[]) {
        calls.push(`${method}:${algorithmOf(method, args)}`);
        return original.apply(this, args);
      };
    }
  });
  after(() => {
    for (const method of METHODS) delete subtle[method];
  });

  it("a listed user and unknown, md5 and plaintext users cause the same crypto calls, in the same order", async () => {
    const reference = await login("alice");
    assert.ok(reference.beforeFirst.length > 0, "the mock salt's HMAC runs for a listed user too");
    assert.ok(reference.all.length > reference.beforeFirst.length, "the proof is checked");
    for (const user of ["nobod", "md5_u", "plain"]) {
      const other = await login(user);
      assert.deepEqual(other.beforeFirst, reference.beforeFirst, `${user}: before AuthenticationSASL`);
      assert.deepEqual(other.all, reference.all, `${user}: the whole exchange`);
    }
  });

  it("with pgrelay's certificate (SCRAM-SHA-256-PLUS offered) the certificate hash is the same work for everyone", async () => {
    const pki = await makeTestPki();
    const pem = new TextEncoder().encode(pki.proxy.certPem);
    const reference = await login("alice", pem);
    assert.ok(
      reference.beforeFirst.some((call) => call.startsWith("digest:")),
      "the certificate is hashed before the first message",
    );
    for (const user of ["nobod", "md5_u", "plain"]) {
      const other = await login(user, pem);
      assert.deepEqual(other.beforeFirst, reference.beforeFirst, `${user}: before AuthenticationSASL`);
      assert.deepEqual(other.all, reference.all, `${user}: the whole exchange`);
    }
  });
});
