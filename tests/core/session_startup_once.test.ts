/**
 * One StartupMessage and one CancelRequest per connection, in memory: a second startup packet is never
 * decoded (auth.mode scram: FATAL 08P01; relay: the server's to judge), every admission slot is released
 * once, and after pgrelay's FATAL nothing more is read.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdmissionGate } from "../../src/admission/admission_gate.ts";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { formatScramVerifier } from "../../src/auth/scram_verifier.ts";
import { NO_METRICS } from "../../src/core/metrics_sink.ts";
import { cancelRequest as cancelPacket } from "../../src/protocol/frontend_messages.ts";
import type { RelaySettings } from "../../src/core/relay_settings.ts";
import { Frontend } from "../../src/frontend/frontend.ts";
import type { Admission } from "../../src/core/session_hooks.ts";
import type { SocketAddress } from "../../src/core/socket.ts";
import { parseLimits } from "../../src/limits/limits_schema.ts";
import { authCode, errorFields, parseBackendFrames } from "../support/backend_frames.ts";
import { cancelRequest, query, startupMessage } from "../support/frontend_frames.ts";
import { MemorySocket } from "../support/memory_socket.ts";
import { waitFor } from "../support/wait.ts";
import { concatBytes } from "../support/bytes.ts";

const verifier = await makeScramVerifier("right", Uint8Array.from({ length: 16 }, (_, i) => i), 4096);
const SCRAM: RelaySettings = {
  upstream: { hostname: "10.9.9.9", port: 5999 },
  startupTimeoutMs: 5000,
  connectTimeoutMs: 1000,
  maxMessageBytes: 1 << 20,
  authentication: { mode: "scram", users: new Map([["alice", formatScramVerifier(verifier)]]) },
};
const RELAY: RelaySettings = { ...SCRAM, authentication: { mode: "relay" } };
const perUserGate = () => new AdmissionGate({ limits: parseLimits({ per_user: 1 }) });
const concat = (...parts: Uint8Array[]) => concatBytes(parts);

function harness<A extends Admission>(settings: RelaySettings, gate: A) {
  const client = new MemorySocket({ hostname: "192.0.2.7", port: 4000 });
  const servers: MemorySocket[] = [];
  const connects: SocketAddress[] = [];
  const cancels: string[] = [];
  let ended = false;
  const session = new Frontend("t-1", client, settings, {
    connect: (address) => {
      connects.push(address);
      const server = new MemorySocket(address);
      servers.push(server);
      return Promise.resolve(server);
    },
    logger: { log() {} },
    metrics: { ...NO_METRICS, cancelRequest: (result) => cancels.push(result) },
    admission: gate,
    // Every key resolves (to the upstream, as sent): what is tested here is how many are handled.
    cancelTarget: (pid, secret) => ({ address: settings.upstream, packet: cancelPacket(pid, secret) }),
    sessionEnded: () => ended = true,
  });
  session.start();
  return { client, servers, connects, cancels, gate, ended: () => ended };
}

describe("Session: one startup packet per connection", () => {
  it("auth.mode scram: a second StartupMessage during the lookup is FATAL 08P01, and the one slot is freed", async () => {
    const { client, gate, ended, connects } = harness(SCRAM, perUserGate());
    client.receive(startupMessage({ user: "alice", database: "app" }));
    client.receive(startupMessage({ user: "bob", database: "app" })); // while pgrelay looks alice up
    await waitFor(() => ended(), "the session to end", 5000);
    const messages = parseBackendFrames(client.bytes);
    assert.deepEqual(messages.map((m) => m.type), ["E"], "no AuthenticationSASL, one error");
    assert.equal(errorFields(messages[0]!.body).C, "08P01");
    assert.equal(gate.admitted, 0);
    assert.deepEqual(gate.slotsInUse(), { max_connections: 0, per_user: 0, per_database: 0, per_source: 0 });
    assert.deepEqual(connects, []);
    // The real alice is not locked out (per_user: 1).
    const again = harness(SCRAM, gate);
    again.client.receive(startupMessage({ user: "alice", database: "app" }));
    await waitFor(() => again.client.written.length > 0, "an answer");
    assert.equal(authCode(parseBackendFrames(again.client.bytes)[0]!.body), 10, "AuthenticationSASL, not 53300");
  });

  it("auth.mode scram: bytes in the same write as the StartupMessage are FATAL 08P01 before any admission", async () => {
    let admits = 0;
    const gate = new AdmissionGate({ limits: parseLimits({ per_user: 1 }) });
    const { client, ended } = harness(SCRAM, { admit: (context) => (admits++, gate.admit(context)) });
    client.receive(concat(startupMessage({ user: "alice" }), startupMessage({ user: "bob" })));
    await waitFor(() => ended(), "the session to end", 5000);
    assert.equal(errorFields(parseBackendFrames(client.bytes)[0]!.body).C, "08P01");
    assert.equal(admits, 0);
    assert.equal(gate.admitted, 0);
  });

  it("relay mode: what follows the StartupMessage goes to the server as bytes, never admitted again", async () => {
    const { client, servers, connects, gate } = harness(RELAY, perUserGate());
    const first = startupMessage({ user: "alice", database: "app" });
    const second = startupMessage({ user: "bob", database: "app" });
    client.receive(concat(first, second.subarray(0, 3)));
    client.receive(second.subarray(3));
    client.receive(query("select 1"));
    await waitFor(() => servers.length === 1 && servers[0]!.written.length > 0, "the upstream to get bytes");
    assert.deepEqual(connects.length, 1);
    assert.equal(gate.admitted, 1, "one admission");
    assert.deepEqual(servers[0]!.bytes, concat(first, second, query("select 1")), "held bytes forwarded as they came");
    client.events?.close();
    await waitFor(() => gate.admitted === 0, "the slot to be released");
  });

  it("one CancelRequest per connection: the rest is ignored, and the connection closes", async () => {
    const { client, servers, connects, cancels, ended } = harness(RELAY, perUserGate());
    client.receive(concat(cancelRequest(1, 2), cancelRequest(3, 4)));
    for (let i = 0; i < 10; i++) client.receive(cancelRequest(5 + i, 6));
    await waitFor(() => servers[0]?.written.length === 1, "the cancel to be sent");
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(connects.length, 1);
    assert.deepEqual(servers[0]!.bytes, cancelRequest(1, 2));
    assert.deepEqual(cancels, ["forwarded"]);
    assert.equal(client.ended, false, "open until the server has taken the cancel");
    servers[0]!.events?.close(); // the server closes a cancel connection once it has the packet
    await waitFor(() => client.ended && ended(), "the client connection to close");
  });

  it("cancel_rate: a burst of cancels from one source beyond the bucket is dropped and counted", async () => {
    const gate = new AdmissionGate({ limits: parseLimits({ cancel_rate: { per_source: 1, burst: 3 } }) });
    const results: string[] = [];
    let upstream = 0;
    for (let i = 0; i < 6; i++) {
      const { client, cancels, connects } = harness(RELAY, gate);
      client.receive(cancelRequest(i, 1));
      await new Promise((resolve) => setTimeout(resolve, 0));
      results.push(...cancels);
      upstream += connects.length;
      if (cancels[0] === "rate_limited") assert.ok(client.ended, "a dropped cancel's connection is closed");
    }
    assert.deepEqual(results, ["forwarded", "forwarded", "forwarded", "rate_limited", "rate_limited", "rate_limited"]);
    assert.equal(upstream, 3);
  });

  it("after pgrelay's FATAL nothing more is read: a client that keeps sending is cut off", async () => {
    const { client, ended, gate } = harness(SCRAM, perUserGate());
    client.receive(startupMessage({ user: "alice", database: "app" }));
    await waitFor(() => client.written.length > 0, "AuthenticationSASL");
    client.receive(query("not a SASL response")); // FATAL 08P01: expected SASLInitialResponse
    await waitFor(() => client.ended, "the FATAL and end");
    assert.equal(errorFields(parseBackendFrames(client.bytes).at(-1)!.body).C, "08P01");
    const before = client.written.length;
    const megabyte = new Uint8Array(1 << 20);
    client.receive(megabyte);
    assert.ok(client.destroyed, "destroyed once it sent more than pgrelay drops");
    assert.equal(client.written.length, before, "nothing more was written");
    await waitFor(() => ended(), "the session to end");
    assert.equal(gate.admitted, 0);
  });
});
