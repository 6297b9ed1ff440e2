import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NO_METRICS, type SessionOutcome } from "../../src/core/metrics_sink.ts";
import type { RelaySettings } from "../../src/core/relay_settings.ts";
import { Frontend, type FrontendHost } from "../../src/frontend/frontend.ts";
import type { Admission, AdmissionVerdict, Auditor } from "../../src/core/session_hooks.ts";
import type { SocketAddress } from "../../src/core/socket.ts";
import { ClientError } from "../../src/protocol/client_error.ts";
import { decodeErrorFields } from "../../src/protocol/error_response.ts";
import { MemorySocket } from "../support/memory_socket.ts";
import { startupMessage } from "../support/frontend_frames.ts";

const SETTINGS: RelaySettings = {
  upstream: { hostname: "10.9.9.9", port: 5999 },
  startupTimeoutMs: 5000,
  connectTimeoutMs: 1000,
  maxMessageBytes: 1 << 20,
};
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function harness(verdict: AdmissionVerdict, auditor?: Auditor) {
  const client = new MemorySocket({ hostname: "192.0.2.7", port: 4000 });
  const connects: SocketAddress[] = [];
  const outcomes: SessionOutcome[] = [];
  const seen: string[] = [];
  const admission: Admission = {
    admit(context) {
      seen.push(
        `${context.user}@${context.database} app=${context.applicationName} from ${context.client.hostname} tls=${context.tls}`,
      );
      return verdict;
    },
  };
  const host: FrontendHost = {
    connect: (address) => {
      connects.push(address);
      return Promise.resolve(new MemorySocket(address));
    },
    logger: { log() {} },
    metrics: { ...NO_METRICS, sessionOutcome: (outcome) => outcomes.push(outcome) },
    admission,
    auditor,
    cancelTarget: () => undefined,
    sessionEnded: () => {},
  };
  const session = new Frontend("t-1", client, SETTINGS, host);
  session.start();
  client.receive(startupMessage({ user: "intern1", database: "prod", application_name: "psql" }));
  return { client, connects, outcomes, seen };
}

describe("Session admission", () => {
  it("a refused session gets the FATAL and the server is never contacted", async () => {
    const refusals: string[] = [];
    const { client, connects, outcomes, seen } = harness(
      {
        allowed: false,
        kind: "denied",
        rule: "no-interns",
        error: new ClientError({
          severity: "FATAL",
          code: "28000",
          message: 'connection denied by pgrelay policy rule "no-interns"',
        }),
      },
      {
        begin: () => assert.fail("a refused session is not begun"),
        refused: (_c, v) => refusals.push(v.rule),
      },
    );
    await tick();
    assert.deepEqual(seen, ["intern1@prod app=psql from 192.0.2.7 tls=false"]);
    assert.equal(connects.length, 0);
    const fields = Object.fromEntries(decodeErrorFields(client.bytes.subarray(5)));
    assert.deepEqual([fields.S, fields.C], ["FATAL", "28000"]);
    assert.match(fields.M!, /no-interns/);
    assert.ok(client.ended);
    assert.deepEqual(outcomes, ["denied"]);
    assert.deepEqual(refusals, ["no-interns"]);
  });

  it("an admitted session connects, and releases its slot exactly once when it ends", async () => {
    let released = 0;
    const begun: string[] = [];
    const ended: string[] = [];
    const { client, connects } = harness(
      { allowed: true, rule: "office", release: () => released++ },
      {
        begin: (context, rule) => {
          begun.push(`${rule} -> ${context.upstream?.port}`);
          return {
            frontendCaptures: [],
            frontendCaptureBytes: 0,
            frontend() {},
            backendFrame() {},
            backend() {},
            authFailed() {},
            ended: (reason) => ended.push(reason),
          };
        },
        refused: () => assert.fail("not refused"),
      },
    );
    await tick();
    assert.deepEqual(connects, [SETTINGS.upstream]);
    assert.deepEqual(begun, ["office -> 5999"]);
    client.events?.close();
    await tick();
    await tick();
    assert.equal(released, 1);
    assert.deepEqual(ended, ["client_closed"]);
  });
});
