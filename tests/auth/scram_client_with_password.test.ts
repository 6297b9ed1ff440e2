/** ScramClientWithPassword against a hostile server-first message: the iteration count is capped. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_SCRAM_ITERATIONS, ScramClientWithPassword } from "../../src/auth/scram_client_with_password.ts";

function serverFirst(client: ScramClientWithPassword, iterations: number): Uint8Array {
  const first = new TextDecoder().decode(client.initialResponse().data);
  const nonce = /r=([^,]+)/.exec(first)![1]!;
  return new TextEncoder().encode(`r=${nonce}server,s=c2FsdHNhbHRzYWx0,i=${iterations}`);
}

describe("ScramClientWithPassword", () => {
  it("refuses a server that asks for more iterations than pgrelay computes, at once, naming the fix", async () => {
    const client = new ScramClientWithPassword("secret");
    const started = performance.now();
    await assert.rejects(client.handleContinue(serverFirst(client, 2_147_483_647)), /at most 1000000.*scram_iterations/);
    assert.ok(performance.now() - started < 1000, "no key derivation was started");
  });

  it("answers a server at the cap's side of normal (4096 iterations) with a client-final message", async () => {
    const client = new ScramClientWithPassword("secret");
    assert.ok(MAX_SCRAM_ITERATIONS >= 4096);
    const final = new TextDecoder().decode(await client.handleContinue(serverFirst(client, 4096)));
    assert.match(final, /^c=biws,r=.+server,p=/);
  });
});
