/**
 * auth.mode scram in the session: a user pgrelay has no usable verifier for gets PostgreSQL's mock SCRAM
 * exchange, byte for byte what a real user with a wrong password gets, while the log, the audit and the
 * metrics keep the real reason.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { formatScramVerifier } from "../../src/auth/scram_verifier.ts";
import type { LogFields, LogLevel } from "../../src/core/logger.ts";
import { NO_METRICS, type SessionOutcome } from "../../src/core/metrics_sink.ts";
import type { RelaySettings } from "../../src/core/relay_settings.ts";
import { Frontend } from "../../src/frontend/frontend.ts";
import type { SessionAudit } from "../../src/core/session_hooks.ts";
import type { SocketAddress } from "../../src/core/socket.ts";
import { PasswordScramClient } from "../support/password_scram_client.ts";
import { authCode, type BackendMessage, errorFields, parseBackendFrames, saslMechanisms } from "../support/backend_frames.ts";
import { saslInitialResponse, saslResponse, startupMessage } from "../support/frontend_frames.ts";
import { MemorySocket } from "../support/memory_socket.ts";
import { waitFor } from "../support/wait.ts";

const verifier = await makeScramVerifier("right", Uint8Array.from({ length: 16 }, (_, i) => 100 + i), 4096);
const USERS = new Map([
  ["alice", formatScramVerifier(verifier)],
  ["md5_user", "md5" + "0123456789abcdef".repeat(2)],
  ["plain_user", "hunter2"],
]);
const SETTINGS: RelaySettings = {
  upstream: { hostname: "10.9.9.9", port: 5999 },
  startupTimeoutMs: 5000,
  connectTimeoutMs: 1000,
  maxMessageBytes: 1 << 20,
  authentication: { mode: "scram", users: USERS },
};

interface Attempt {
  /** Every message pgrelay sent the client, in order. */
  messages: BackendMessage[];
  /** The bytes of the last one (the ErrorResponse). */
  lastFrame: Uint8Array;
  serverFirst: string;
  logs: Array<{ level: LogLevel; event: string; fields: LogFields }>;
  audit: Array<[string, string]>;
  outcomes: SessionOutcome[];
  connects: SocketAddress[];
  clientEnded: boolean;
}

/**
 * One login as `user` with `password` through a fresh session, the client speaking SCRAM-SHA-256; with
 * `leaveEarly` the client closes its connection instead of answering AuthenticationSASL.
 */
async function attempt(user: string, password: string, leaveEarly = false): Promise<Attempt> {
  const client = new MemorySocket();
  const logs: Attempt["logs"] = [];
  const audit: Attempt["audit"] = [];
  const outcomes: SessionOutcome[] = [];
  const connects: SocketAddress[] = [];
  const sessionAudit: SessionAudit = {
    frontendCaptures: [],
    frontendCaptureBytes: 0,
    frontend() {},
    backendFrame() {},
    backend() {},
    authFailed: (sqlstate, message) => audit.push([sqlstate, message]),
    ended() {},
  };
  const session = new Frontend("t-1", client, SETTINGS, {
    connect: (address) => {
      connects.push(address);
      return Promise.resolve(new MemorySocket(address));
    },
    logger: { log: (level, event, fields = {}) => logs.push({ level, event, fields }) },
    metrics: { ...NO_METRICS, sessionOutcome: (outcome) => outcomes.push(outcome) },
    auditor: { begin: () => sessionAudit, refused() {} },
    cancelTarget: () => undefined,
    sessionEnded() {},
  });
  session.start();
  const messages = () => parseBackendFrames(client.bytes);
  const scram = new PasswordScramClient({ password, nonce: "fixed-client-nonce" });
  client.receive(startupMessage({ user, database: "app" }));
  await waitFor(() => messages().length === 1, "AuthenticationSASL");
  if (leaveEarly) {
    client.end();
    await waitFor(() => logs.some((l) => l.event === "auth_failed"), "auth_failed");
    return { messages: messages(), lastFrame: client.written.at(-1)!, serverFirst: "", logs, audit, outcomes, connects, clientEnded: true };
  }
  client.receive(saslInitialResponse("SCRAM-SHA-256", scram.clientFirst()));
  await waitFor(() => messages().length === 2, "AuthenticationSASLContinue");
  const serverFirst = messages()[1]!.body.subarray(4);
  client.receive(saslResponse(scram.clientFinal(serverFirst)));
  await waitFor(() => messages().length === 3 && client.ended, "the ErrorResponse and the close");
  await waitFor(() => logs.some((l) => l.event === "session_end"), "session_end");
  return {
    messages: messages(),
    lastFrame: client.written.at(-1)!,
    serverFirst: new TextDecoder().decode(serverFirst),
    logs,
    audit,
    outcomes,
    connects,
    clientEnded: client.ended,
  };
}

/** An ErrorResponse frame with every `"from"` in its fields replaced by `"to"`, and its length fixed. */
function swapUser(frame: Uint8Array, from: string, to: string): Uint8Array {
  const body = new TextDecoder().decode(frame.subarray(5)).replaceAll(`"${from}"`, `"${to}"`);
  const bytes = new TextEncoder().encode(body);
  const out = new Uint8Array(5 + bytes.length);
  out[0] = frame[0]!;
  new DataView(out.buffer).setInt32(1, 4 + bytes.length);
  out.set(bytes, 5);
  return out;
}

const SERVER_FIRST = /^r=fixed-client-nonce[A-Za-z0-9+/]{24},s=([A-Za-z0-9+/]{22}==),i=4096$/;

describe("Session, auth.mode scram: mock exchange", () => {
  it("an unknown, md5 or plaintext user gets exactly what a wrong password gets, the user name aside", async () => {
    const wrong = await attempt("alice", "wrong");
    assert.equal(errorFields(wrong.messages[2]!.body).C, "28P01", "the reference: a wrong password");
    assert.match(wrong.serverFirst, SERVER_FIRST);
    for (const user of ["nobody", "md5_user", "plain_user"]) {
      const mocked = await attempt(user, "anything");
      assert.deepEqual(mocked.messages.map((m) => m.type), ["R", "R", "E"], user);
      assert.deepEqual(mocked.messages[0]!.body, wrong.messages[0]!.body, `${user}: same AuthenticationSASL`);
      assert.deepEqual(saslMechanisms(mocked.messages[0]!.body.subarray(4)), ["SCRAM-SHA-256"]);
      assert.equal(authCode(mocked.messages[1]!.body), 11, "AuthenticationSASLContinue");
      assert.match(mocked.serverFirst, SERVER_FIRST, `${user}: a real-looking server-first`);
      assert.equal(mocked.serverFirst.length, wrong.serverFirst.length);
      assert.deepEqual(mocked.lastFrame, swapUser(wrong.lastFrame, "alice", user), `${user}: the same ErrorResponse`);
      assert.deepEqual(errorFields(mocked.messages[2]!.body), {
        S: "FATAL",
        V: "FATAL",
        C: "28P01",
        M: `password authentication failed for user "${user}"`,
      });
      assert.ok(mocked.clientEnded);
      assert.deepEqual(mocked.connects, [], `${user}: the server never hears of it`);
    }
  });

  it("an unknown user sees the same salt on every attempt, and another user another salt", async () => {
    const salt = async (user: string) => SERVER_FIRST.exec((await attempt(user, "x")).serverFirst)?.[1];
    const first = await salt("nobody");
    assert.ok(first);
    assert.equal(await salt("nobody"), first, "a new session, the same salt");
    assert.notEqual(await salt("nobody2"), first);
  });

  it("the log, the audit and the metrics get the real reason", async () => {
    const cases = [
      ["nobody", 'pgrelay has no SCRAM verifier for user "nobody"', /List the user's SCRAM verifier/],
      ["md5_user", `user "md5_user" has an md5 password in pgrelay's auth file; auth.mode scram needs a SCRAM-SHA-256 verifier`, /password_encryption = 'scram-sha-256'/],
      ["plain_user", `user "plain_user" has a plaintext password in pgrelay's auth file; auth.mode scram needs the SCRAM-SHA-256 verifier`, /List the user's SCRAM verifier/],
    ] as const;
    for (const [user, message, hint] of cases) {
      const mocked = await attempt(user, "anything");
      const failed = mocked.logs.filter((l) => l.event === "auth_failed");
      assert.equal(failed.length, 1, `${user}: one auth_failed line`);
      const line = failed[0]!;
      assert.equal(line.level, "warn");
      assert.equal(line.fields.user, user);
      assert.equal(line.fields.sqlstate, "28000");
      assert.equal(line.fields.message, message);
      assert.match(String(line.fields.hint), hint);
      assert.equal(line.fields.mock_exchange, true);
      assert.equal(line.fields.client_sqlstate, "28P01");
      assert.equal(line.fields.client_message, `password authentication failed for user "${user}"`);
      assert.deepEqual(mocked.audit, [["28000", message]]);
      assert.deepEqual(mocked.outcomes, ["auth_failed"]);
    }
    const left = await attempt("nobody", "", true);
    const leftLine = left.logs.find((l) => l.event === "auth_failed")!;
    assert.equal(leftLine.fields.message, 'pgrelay has no SCRAM verifier for user "nobody"', "a client that gives up is logged too");
    assert.equal(leftLine.fields.client_sqlstate, undefined, "nothing was sent");
    assert.deepEqual(left.messages.map((m) => m.type), ["R"]);
    assert.deepEqual(left.audit, [], "no audit event after the session_end that closed its record");
    const wrong = await attempt("alice", "wrong");
    const line = wrong.logs.find((l) => l.event === "auth_failed")!;
    assert.deepEqual([line.fields.sqlstate, line.fields.message, line.fields.mock_exchange], ["28P01", 'password authentication failed for user "alice"', undefined]);
    assert.deepEqual(wrong.audit, [["28P01", 'password authentication failed for user "alice"']]);
    assert.deepEqual(wrong.outcomes, ["auth_failed"]);
  });
});
