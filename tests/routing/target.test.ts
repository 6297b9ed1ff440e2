import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  parseServerBoolean,
  parseTarget,
  type Target,
  TARGET_NAMES,
  targetAcceptsRole,
  targetAcceptsServer,
} from "../../src/routing/target.ts";

describe("route targets", () => {
  it("are libpq's target_session_attrs words", () => {
    assert.deepEqual(
      [...TARGET_NAMES].sort(),
      ["any", "prefer-standby", "primary", "read-only", "read-write", "standby"],
    );
    assert.equal(parseTarget("prefer-standby"), "prefer-standby");
    assert.equal(parseTarget("master"), undefined);
    assert.equal(parseTarget("toString"), undefined, "not fooled by Object.prototype");
    assert.equal(parseTarget(1), undefined);
  });

  it("accept host roles as the health checks report them", () => {
    const table: Record<Target, [primary: boolean, standby: boolean, unknown: boolean]> = {
      any: [true, true, true],
      "read-write": [true, false, false],
      "read-only": [false, true, false],
      primary: [true, false, false],
      standby: [false, true, false],
      "prefer-standby": [true, true, false],
    };
    for (const [target, [primary, standby, unknown]] of Object.entries(table) as [Target, boolean[]][]) {
      assert.equal(targetAcceptsRole(target, "primary"), primary, `${target} on a primary`);
      assert.equal(targetAcceptsRole(target, "standby"), standby, `${target} on a standby`);
      assert.equal(targetAcceptsRole(target, "unknown"), unknown, `${target} on an unchecked host`);
    }
  });

  it("accept a server by its in_hot_standby and default_transaction_read_only, as libpq does", () => {
    const primary = { inHotStandby: false, defaultTransactionReadOnly: false };
    const standby = { inHotStandby: true, defaultTransactionReadOnly: false };
    const readOnlyPrimary = { inHotStandby: false, defaultTransactionReadOnly: true };
    assert.equal(targetAcceptsServer("primary", primary), true);
    assert.equal(targetAcceptsServer("primary", standby), false);
    assert.equal(targetAcceptsServer("primary", readOnlyPrimary), true);
    assert.equal(targetAcceptsServer("standby", standby), true);
    assert.equal(targetAcceptsServer("standby", primary), false);
    assert.equal(targetAcceptsServer("read-write", primary), true);
    assert.equal(targetAcceptsServer("read-write", standby), false);
    assert.equal(targetAcceptsServer("read-write", readOnlyPrimary), false);
    assert.equal(targetAcceptsServer("read-only", readOnlyPrimary), true);
    assert.equal(targetAcceptsServer("read-only", standby), true);
    assert.equal(targetAcceptsServer("read-only", primary), false);
    assert.equal(targetAcceptsServer("any", standby), true);
    assert.equal(targetAcceptsServer("prefer-standby", primary), true);
  });

  it("say undefined when a fact they need was not reported (before PostgreSQL 14)", () => {
    const old = { inHotStandby: undefined, defaultTransactionReadOnly: false };
    assert.equal(targetAcceptsServer("primary", old), undefined);
    assert.equal(targetAcceptsServer("standby", old), undefined);
    assert.equal(targetAcceptsServer("read-write", old), undefined);
    assert.equal(
      targetAcceptsServer("read-write", { inHotStandby: undefined, defaultTransactionReadOnly: true }),
      false,
    );
    assert.equal(targetAcceptsServer("any", old), true);
    assert.equal(parseServerBoolean("on"), true);
    assert.equal(parseServerBoolean("off"), false);
    assert.equal(parseServerBoolean(undefined), undefined);
  });
});
