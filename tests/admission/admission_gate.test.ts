import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdmissionGate } from "../../src/admission/admission_gate.ts";
import { SessionContext } from "../../src/core/session_context.ts";
import type { AdmissionVerdict } from "../../src/core/session_hooks.ts";
import { parseLimits } from "../../src/limits/limits_schema.ts";
import { parsePolicy } from "../../src/policy/policy_schema.ts";

let nextId = 1;
const context = (user: string, database = "app", source = "10.0.0.1") => {
  const c = new SessionContext(`s-${nextId++}`, { hostname: source, port: 5000 });
  c.user = user;
  c.database = database;
  return c;
};
const denied = (verdict: AdmissionVerdict) => {
  assert.equal(verdict.allowed, false, "expected a refusal");
  return verdict as AdmissionVerdict & { allowed: false };
};
const allowed = (verdict: AdmissionVerdict) => {
  assert.equal(verdict.allowed, true, verdict.allowed ? "" : verdict.error.message);
  return verdict as AdmissionVerdict & { allowed: true };
};

describe("AdmissionGate", () => {
  it("denies by policy with 28000 and the rule's name, else its index", () => {
    const gate = new AdmissionGate({
      policy: parsePolicy({
        rules: [{ name: "no-interns", deny: { user: "intern*" } }, { deny: { database: "prod" } }],
      }),
    });
    const byName = denied(gate.admit(context("intern1")));
    assert.deepEqual([byName.kind, byName.rule, byName.error.code, byName.error.severity], [
      "denied",
      "no-interns",
      "28000",
      "FATAL",
    ]);
    assert.match(byName.error.message, /rule "no-interns"/);
    assert.match(denied(gate.admit(context("bob", "prod"))).error.message, /rule "rules\[1\]"/);
    assert.equal(allowed(gate.admit(context("bob"))).rule, "default");
    assert.equal(gate.admitted, 1, "denied sessions take no slot");
  });

  it("refuses with 53300 at exactly each configured count and frees slots on release", () => {
    const gate = new AdmissionGate({
      limits: parseLimits({ per_user: 2, per_database: 3, per_source: 4, max_connections: 5 }),
    });
    const a1 = allowed(gate.admit(context("a", "d1")));
    allowed(gate.admit(context("a", "d1")));
    const third = denied(gate.admit(context("a", "d2")));
    assert.deepEqual([third.kind, third.rule, third.error.code], ["limited", "per_user", "53300"]);
    assert.match(third.error.message, /too many connections for user "a": pgrelay allows 2/);
    allowed(gate.admit(context("b", "d1")));
    assert.equal(denied(gate.admit(context("c", "d1"))).rule, "per_database");
    allowed(gate.admit(context("c", "d2")));
    assert.equal(denied(gate.admit(context("d", "d3"))).rule, "per_source");
    allowed(gate.admit(context("d", "d3", "10.0.0.2")));
    assert.equal(denied(gate.admit(context("e", "d4", "10.0.0.3"))).rule, "max_connections");
    a1.release();
    a1.release(); // twice is harmless
    assert.equal(gate.admitted, 4);
    allowed(gate.admit(context("a", "d4", "10.0.0.3")));
  });

  it("rate-limits per source address and recovers; reconfigure keeps live counts", () => {
    let now = 0;
    const gate = new AdmissionGate({
      limits: parseLimits({ connect_rate: { per_source: 10, burst: 2 } }),
      monotonicMs: () => now,
    });
    allowed(gate.admit(context("a")));
    allowed(gate.admit(context("a")));
    const refused = denied(gate.admit(context("a")));
    assert.deepEqual([refused.rule, refused.error.code], ["connect_rate", "53300"]);
    assert.match(refused.error.message, /too many connection attempts from 10\.0\.0\.1/);
    allowed(gate.admit(context("a", "app", "10.0.0.9")));
    now += 100;
    allowed(gate.admit(context("a")));
    gate.configure(parsePolicy({}), parseLimits({ max_connections: 4 }));
    assert.equal(denied(gate.admit(context("z"))).rule, "max_connections", "4 live sessions carried over");
  });

  it("slotsInUse() counts the slots held per limit kind, back to 0 once released", () => {
    const gate = new AdmissionGate();
    const a = gate.admit(context("a", "d1", "10.0.0.1"));
    const b = gate.admit(context("b", "d1", "10.0.0.2"));
    assert.deepEqual(gate.slotsInUse(), { max_connections: 2, per_user: 2, per_database: 2, per_source: 2 });
    for (const verdict of [a, b]) if (verdict.allowed) verdict.release();
    assert.deepEqual(gate.slotsInUse(), { max_connections: 0, per_user: 0, per_database: 0, per_source: 0 });
  });

  it("admitCancel(): 10 a second per address with a burst of 20 by default, cancel_rate when set", () => {
    let now = 0;
    const byDefault = new AdmissionGate({ monotonicMs: () => now });
    const taken = Array.from({ length: 25 }, () => byDefault.admitCancel(context("a", "d", "10.0.0.1")));
    assert.equal(taken.filter(Boolean).length, 20);
    assert.equal(byDefault.admitCancel(context("a", "d", "10.0.0.2")), true, "another address has its own bucket");
    now += 100;
    assert.equal(byDefault.admitCancel(context("a", "d", "10.0.0.1")), true, "one back after 100 ms");
    assert.equal(byDefault.admitCancel(context("a", "d", "10.0.0.1")), false);
    const configured = new AdmissionGate({ limits: parseLimits({ cancel_rate: { per_source: 1, burst: 2 } }), monotonicMs: () => now });
    assert.deepEqual([1, 2, 3].map(() => configured.admitCancel(context("a"))), [true, true, false]);
  });

  it("revocation() gives 57P01 for a live session the current policy denies", () => {
    const gate = new AdmissionGate();
    const live = context("intern9");
    allowed(gate.admit(live));
    assert.equal(gate.revocation(live), undefined);
    gate.configure(
      parsePolicy({ rules: [{ name: "interns-out", deny: { user: "intern*" } }] }),
      parseLimits({}),
    );
    const error = gate.revocation(live);
    assert.equal(error?.code, "57P01");
    assert.match(error?.message ?? "", /rule "interns-out" now denies it/);
    assert.equal(gate.revocation(context("bob")), undefined);
  });
});
