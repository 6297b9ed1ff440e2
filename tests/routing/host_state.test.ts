import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HostState } from "../../src/routing/host_state.ts";

const at = new Date("2026-12-04T12:00:00Z");

describe("host health records", () => {
  it("start up with an unknown role, so an unchecked upstream keeps working", () => {
    const host = new HostState("db1:5432");
    assert.equal(host.up, true);
    assert.equal(host.role, "unknown");
    assert.equal(host.checked, false);
    assert.deepEqual(host.record(undefined), {
      host: "db1:5432",
      role: "unknown",
      up: true,
      lag_bytes: null,
      timeline: null,
      last_check: null,
      error: null,
      consecutive_failures: 0,
    });
  });

  it("take role, position and timeline from a passing check", () => {
    const host = new HostState("db1:5432");
    host.recordCheck({ role: "standby", lsn: 0x1_00000010n, timeline: 3 }, at);
    assert.equal(host.role, "standby");
    assert.equal(host.lsn, 0x1_00000010n);
    assert.deepEqual(host.record(42), {
      host: "db1:5432",
      role: "standby",
      up: true,
      lag_bytes: 42,
      timeline: 3,
      last_check: "2026-12-04T12:00:00.000Z",
      error: null,
      consecutive_failures: 0,
    });
  });

  it("are out after a failed check, counting failures, until a check passes", () => {
    const host = new HostState("db1:5432");
    host.recordCheck({ role: "primary", lsn: 1n, timeline: 1 }, at);
    host.recordCheckFailure("connection refused", at);
    host.recordCheckFailure("timed out after 1000 ms", at);
    assert.equal(host.up, false);
    assert.equal(host.role, "unknown");
    assert.equal(host.downReason, "check");
    assert.equal(host.consecutiveFailures, 2);
    assert.equal(host.error, "timed out after 1000 ms");
    host.recordConnectSuccess();
    assert.equal(host.up, false, "a lucky connection does not overrule the checks");
    host.recordCheck({ role: "primary", lsn: 2n, timeline: 2 }, at);
    assert.equal(host.up, true);
    assert.equal(host.consecutiveFailures, 0);
    assert.equal(host.error, undefined);
  });

  it("are out after a refused connection until a check passes (when checked)", () => {
    const host = new HostState("db1:5432");
    host.recordCheck({ role: "primary", lsn: 1n, timeline: 1 }, at);
    host.recordConnectFailure("ECONNREFUSED");
    assert.equal(host.up, false);
    assert.equal(host.downReason, "connect");
    assert.equal(host.role, "primary", "the role a check saw is kept");
    host.recordConnectSuccess();
    assert.equal(host.up, false);
    host.recordCheck({ role: "primary", lsn: 1n, timeline: 1 }, at);
    assert.equal(host.up, true);
  });

  it("come back on a successful connection when no check watches them", () => {
    const host = new HostState("db1:5432");
    host.recordConnectFailure("ECONNREFUSED");
    host.recordConnectFailure("ECONNREFUSED");
    assert.equal(host.up, false);
    assert.equal(host.consecutiveFailures, 2);
    host.recordConnectSuccess();
    assert.equal(host.up, true);
    assert.equal(host.consecutiveFailures, 0);
  });

  it("keep counting refused connections while a failed check holds them out", () => {
    const host = new HostState("db1:5432");
    host.recordCheckFailure("refused", at);
    host.recordConnectFailure("ECONNREFUSED");
    assert.equal(host.downReason, "check");
    assert.equal(host.consecutiveFailures, 2);
    assert.equal(host.error, "ECONNREFUSED");
  });

  it("report what changed, so the caller can end sessions on a host that went down", () => {
    const host = new HostState("db1:5432");
    assert.deepEqual(host.recordCheck({ role: "standby", lsn: 1n, timeline: 1 }, at), {
      wasUp: true,
      up: true,
      wasRole: "unknown",
      role: "standby",
    });
    assert.equal(
      host.recordCheck({ role: "standby", lsn: 2n, timeline: 1 }, at),
      undefined,
      "nothing changed",
    );
    assert.deepEqual(host.recordCheck({ role: "primary", lsn: 3n, timeline: 2 }, at), {
      wasUp: true,
      up: true,
      wasRole: "standby",
      role: "primary",
    }, "promoted");
    assert.deepEqual(host.recordCheckFailure("timed out", at), {
      wasUp: true,
      up: false,
      wasRole: "primary",
      role: "unknown",
    });
    assert.equal(host.recordCheckFailure("timed out", at), undefined);
    assert.equal(host.recordConnectFailure("refused"), undefined);
    const unchecked = new HostState("db2:5432");
    assert.deepEqual(unchecked.recordConnectFailure("refused"), {
      wasUp: true,
      up: false,
      wasRole: "unknown",
      role: "unknown",
    });
    assert.deepEqual(unchecked.recordConnectSuccess(), {
      wasUp: false,
      up: true,
      wasRole: "unknown",
      role: "unknown",
    });
  });
});
