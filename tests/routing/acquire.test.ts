import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { acquire } from "../../src/routing/acquire.ts";
import { Cluster } from "../../src/routing/cluster.ts";
import { HealthChecker } from "../../src/routing/health_checker.ts";
import { HostState } from "../../src/routing/host_state.ts";

const at = new Date("2026-12-04T12:00:00Z");
const checked = (address: string, role: "primary" | "standby") => {
  const host = new HostState(address);
  host.recordCheck({ role, lsn: 100n, timeline: 1 }, at);
  return host;
};

describe("acquire", () => {
  it("tries the next eligible host when the first refuses, and marks the refuser down", async () => {
    const hosts = [checked("p:1", "primary"), checked("a:1", "standby"), checked("b:1", "standby")];
    const cluster = new Cluster({ name: "main", hosts });
    const tried: string[] = [];
    const result = await acquire(cluster, "standby", {
      connect: (host) => {
        tried.push(host.address);
        return host.address === "a:1"
          ? Promise.reject(new Error("ECONNREFUSED"))
          : Promise.resolve(`conn to ${host.address}`);
      },
    });
    assert.deepEqual(tried, ["a:1", "b:1"]);
    assert.ok(result.ok);
    assert.equal(result.connection, "conn to b:1");
    assert.equal(hosts[1]!.up, false);
    assert.equal(hosts[1]!.error, "ECONNREFUSED");
  });

  it("rethrows an error that is not the host's failure, without marking it down", async () => {
    const hosts = [checked("p:1", "primary")];
    const cluster = new Cluster({ name: "main", hosts });
    await assert.rejects(
      acquire(cluster, "primary", {
        connect: () => Promise.reject(new Error("password authentication failed")),
        isHostFailure: (error) => !(error as Error).message.includes("authentication"),
      }),
      /password authentication failed/,
    );
    assert.equal(hosts[0]!.up, true);
  });

  it("answers the cluster's reason when nothing is eligible and nothing holds the client", async () => {
    const cluster = new Cluster({ name: "main", hosts: [checked("a:1", "standby")] });
    const result = await acquire(cluster, "primary", { connect: () => Promise.resolve(1) });
    assert.ok(!result.ok);
    assert.match(result.reason, /^cluster "main" has no eligible host for target "primary"/);
  });

  it("names the last connect failure when every candidate refused", async () => {
    const cluster = new Cluster({ name: "main", hosts: [new HostState("solo:1")] });
    const result = await acquire(cluster, "any", {
      connect: () => Promise.reject(new Error("ECONNREFUSED")),
    });
    assert.ok(!result.ok);
    assert.match(
      result.reason,
      /no host for target "any" that accepted a connection \(last: solo:1: ECONNREFUSED\)/,
    );
    const again = await acquire(cluster, "any", { connect: () => Promise.resolve("ok") });
    assert.ok(again.ok, "an unchecked host that refused is tried again, and comes back");
    assert.equal(cluster.hosts[0]!.up, true);
  });

  it("holds the client until a check makes a host eligible (failover)", async () => {
    const old = checked("old:1", "primary");
    const promoted = checked("new:1", "standby");
    const cluster = new Cluster({ name: "main", hosts: [old, promoted] });
    const answers = new Map([["old:1", new Error("refused")], ["new:1", null]]);
    const checker = new HealthChecker({
      hosts: cluster.hosts,
      intervalMs: 1000,
      timeoutMs: 1000,
      probe: (host) => {
        const answer = answers.get(host.address);
        return answer ? Promise.reject(answer) : Promise.resolve({ role: "primary", lsn: 200n, timeline: 2 });
      },
    });
    old.recordCheckFailure("refused", at); // the primary died
    const pending = acquire(cluster, "primary", {
      connect: (host) => Promise.resolve(host.address),
      holdMs: 60_000,
      nextChange: (ms) => checker.nextChange(ms),
      report: (host, change) => checker.report(host, change),
    });
    await new Promise((r) => setTimeout(r, 10));
    await checker.checkAll(); // sees the promotion
    const result = await pending;
    assert.ok(result.ok);
    assert.equal(result.connection, "new:1");
  });

  it("gives up after the hold time with the reason", async () => {
    const cluster = new Cluster({ name: "main", hosts: [checked("a:1", "standby")] });
    const checker = new HealthChecker({
      hosts: cluster.hosts,
      intervalMs: 1000,
      timeoutMs: 1000,
      probe: () => Promise.reject(new Error("x")),
    });
    const result = await acquire(cluster, "read-write", {
      connect: () => Promise.resolve(1),
      holdMs: 20,
      nextChange: (ms) => checker.nextChange(ms),
    });
    assert.ok(!result.ok);
    assert.match(result.reason, /target "read-write"/);
  });
});
