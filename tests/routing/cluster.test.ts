import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Candidates, Cluster, type ClusterOptions } from "../../src/routing/cluster.ts";
import { HostState } from "../../src/routing/host_state.ts";

const at = new Date("2026-12-04T12:00:00Z");
const MB = 1_000_000;

function host(address: string, role?: "primary" | "standby", lsn?: bigint, timeline?: number): HostState {
  const state = new HostState(address);
  if (role) state.recordCheck({ role, lsn, timeline }, at);
  return state;
}

const names = (result: Candidates): string[] => {
  assert.ok(result.ok, result.ok ? "" : result.reason);
  return result.hosts.map((h) => h.address);
};
const reason = (result: Candidates): string => {
  assert.ok(!result.ok, `expected no candidate, got ${result.ok ? names(result).join(", ") : ""}`);
  return result.reason;
};

function cluster(hosts: HostState[], options: Partial<ClusterOptions> = {}): Cluster {
  return new Cluster({ name: "main", hosts, ...options });
}

describe("cluster candidates", () => {
  const base = 0x5_00000000n;
  const healthy = () => [
    host("db1:5432", "primary", base, 2),
    host("db2:5432", "standby", base - 100n, 2),
    host("db3:5432", "standby", base - 200n, 2),
  ];

  it("send primary and read-write to the primary, standby and read-only to standbys", () => {
    const c = cluster(healthy());
    assert.deepEqual(names(c.candidates("primary")), ["db1:5432"]);
    assert.deepEqual(names(c.candidates("read-write")), ["db1:5432"]);
    assert.deepEqual(names(c.candidates("standby")), ["db2:5432", "db3:5432"]);
    assert.deepEqual(names(c.candidates("read-only")), ["db3:5432", "db2:5432"], "round robin moved on");
  });

  it("put standbys first for prefer-standby, the primary as the last fallback", () => {
    const hosts = healthy();
    const c = cluster(hosts);
    assert.deepEqual(names(c.candidates("prefer-standby")), ["db2:5432", "db3:5432", "db1:5432"]);
    hosts[1]!.recordCheckFailure("refused", at);
    hosts[2]!.recordConnectFailure("refused");
    assert.deepEqual(names(c.candidates("prefer-standby")), ["db1:5432"]);
  });

  it("offer every eligible host in configured order for any (unchecked hosts included)", () => {
    const unchecked = cluster([host("solo:5432")]);
    assert.deepEqual(names(unchecked.candidates("any")), ["solo:5432"]);
    assert.match(reason(unchecked.candidates("primary")), /solo:5432 has not been checked yet/);
    assert.deepEqual(names(cluster(healthy()).candidates("any")), ["db1:5432", "db2:5432", "db3:5432"]);
  });

  it("still offer an unchecked host that refused a connection, last (nothing else brings it back)", () => {
    const hosts = [host("a:1"), host("b:1")];
    const c = cluster(hosts);
    hosts[0]!.recordConnectFailure("refused");
    assert.deepEqual(names(c.candidates("any")), ["b:1", "a:1"]);
    hosts[1]!.recordConnectFailure("refused");
    assert.deepEqual(names(c.candidates("any")), ["a:1", "b:1"]);
    assert.equal(c.hasCandidate("any"), true);
  });

  it("leave out hosts that are down, and say why when none is left", () => {
    const hosts = healthy();
    const c = cluster(hosts);
    hosts[0]!.recordConnectFailure("connect ECONNREFUSED 10.0.0.1:5432");
    assert.deepEqual(names(c.candidates("any")), ["db2:5432", "db3:5432"]);
    const why = reason(c.candidates("primary"));
    assert.match(why, /^cluster "main" has no eligible host for target "primary"/);
    assert.match(why, /db1:5432 is down: connect ECONNREFUSED 10\.0\.0\.1:5432/);
    assert.match(why, /db2:5432 is a standby/);
  });

  it("skip standbys further behind than max_lag, measured against the primary", () => {
    const hosts = [
      host("db1:5432", "primary", base, 2),
      host("db2:5432", "standby", base - BigInt(20 * MB), 2),
      host("db3:5432", "standby", base - BigInt(16 * MB), 2),
    ];
    const c = cluster(hosts, { maxLagBytes: 16 * MB });
    assert.deepEqual(names(c.candidates("standby")), ["db3:5432"], "exactly max_lag behind is still fine");
    assert.equal(c.lagBytes(hosts[1]!), 20 * MB);
    assert.equal(c.lagBytes(hosts[0]!), undefined);
    hosts[2]!.recordCheck({ role: "standby", lsn: base - BigInt(17 * MB), timeline: 2 }, at);
    assert.match(
      reason(c.candidates("standby")),
      /db2:5432 is a standby 20000000 bytes behind \(max_lag 16000000\)/,
    );
    assert.deepEqual(names(c.candidates("prefer-standby")), ["db1:5432"]);
    assert.deepEqual(c.record().hosts.map((h) => h.lag_bytes), [null, 20 * MB, 17 * MB]);
  });

  it("keep standbys eligible when there is no primary to measure lag against", () => {
    const hosts = [
      host("db1:5432", "primary", base, 2),
      host("db2:5432", "standby", base - BigInt(50 * MB), 2),
    ];
    const c = cluster(hosts, { maxLagBytes: MB });
    assert.equal(c.candidates("standby").ok, false);
    hosts[0]!.recordCheckFailure("refused", at);
    assert.deepEqual(names(c.candidates("standby")), ["db2:5432"]);
    assert.equal(c.lagBytes(hosts[1]!), undefined);
  });

  it("after a promotion, follow the host on the higher timeline and drop the old primary", () => {
    const hosts = [
      host("db1:5432", "primary", base, 2), // the old primary, restarted without standby.signal
      host("db2:5432", "primary", base - 1000n, 3), // promoted: a new timeline
      host("db3:5432", "standby", base - 1100n, 3),
    ];
    const c = cluster(hosts, { maxLagBytes: 500 });
    assert.deepEqual(names(c.candidates("primary")), ["db2:5432"]);
    assert.deepEqual(
      names(c.candidates("any")),
      ["db2:5432", "db3:5432"],
      "the stale primary is never chosen",
    );
    assert.deepEqual(names(c.candidates("standby")), ["db3:5432"], "lag measured against db2, not db1");
    assert.equal(c.lagBytes(hosts[2]!), 100);
  });

  it("refuse primary and read-write when two primaries share a timeline, naming cluster and target", () => {
    const hosts = [
      host("db1:5432", "primary", base, 2),
      host("db2:5432", "primary", base, 2),
      host("db3:5432", "standby", base, 2),
    ];
    const c = cluster(hosts);
    for (const target of ["primary", "read-write"] as const) {
      const why = reason(c.candidates(target));
      assert.match(
        why,
        new RegExp(`^cluster "main" has no eligible host for target "${target}": 2 hosts claim`),
      );
      assert.match(why, /db1:5432 on timeline 2, db2:5432 on timeline 2/);
      assert.match(why, /refuses rather than guess/);
    }
    assert.deepEqual(names(c.candidates("any")), ["db3:5432"], "neither claimant, for any target");
    assert.deepEqual(names(c.candidates("prefer-standby")), ["db3:5432"]);
  });

  it("never go back to a stale primary, even when the new one refuses or goes down", () => {
    const hosts = [
      host("old:1", "primary", base, 2),
      host("new:1", "primary", base, 3),
      host("s:1", "standby", base, 3),
    ];
    const c = cluster(hosts);
    assert.deepEqual(names(c.candidates("primary")), ["new:1"]);
    hosts[1]!.recordConnectFailure("ECONNREFUSED");
    const why = reason(c.candidates("primary"));
    assert.match(why, /old:1 claims to be primary on timeline 2, behind new:1 on timeline 3/);
    assert.match(why, /new:1 is down: ECONNREFUSED/);
    hosts[1]!.recordCheckFailure("timed out", at);
    assert.equal(c.candidates("primary").ok, false, "the old primary on timeline 2 stays stale");
    assert.deepEqual(names(c.candidates("any")), ["s:1"]);
    hosts[1]!.recordCheck({ role: "primary", lsn: base, timeline: 3 }, at);
    assert.deepEqual(names(c.candidates("primary")), ["new:1"]);
  });

  it("refuse when a claimant's timeline is unknown", () => {
    const c = cluster([host("db1:5432", "primary", base, 2), host("db2:5432", "primary", base, undefined)]);
    assert.match(reason(c.candidates("primary")), /db2:5432 on timeline unknown/);
    assert.match(reason(c.candidates("any")), /2 hosts claim to be primary/);
  });

  it("a claimant that goes down settles the split brain", () => {
    const hosts = [host("db1:5432", "primary", base, 2), host("db2:5432", "primary", base, 2)];
    const c = cluster(hosts);
    assert.equal(c.candidates("primary").ok, false);
    hosts[0]!.recordCheckFailure("refused", at);
    assert.deepEqual(names(c.candidates("primary")), ["db2:5432"]);
  });

  it("round_robin rotates the first choice among eligible standbys", () => {
    const hosts = [
      host("p:1", "primary", base, 1),
      host("a:1", "standby", base, 1),
      host("b:1", "standby", base, 1),
      host("c:1", "standby", base, 1),
    ];
    const c = cluster(hosts);
    const firsts = Array.from({ length: 6 }, () => names(c.candidates("standby"))[0]);
    assert.deepEqual(firsts, ["a:1", "b:1", "c:1", "a:1", "b:1", "c:1"]);
    assert.deepEqual(names(c.candidates("standby")), ["a:1", "b:1", "c:1"], "the rest follow as fallbacks");
  });

  it("random shuffles with the injected source", () => {
    const hosts = [
      host("p:1", "primary", base, 1),
      host("a:1", "standby", base, 1),
      host("b:1", "standby", base, 1),
      host("c:1", "standby", base, 1),
    ];
    const draws = [0.99, 0.0];
    const c = cluster(hosts, { balance: "random", random: () => draws.shift() ?? 0.5 });
    // i=2: j=floor(0.99*3)=2 (stay); i=1: j=0 (swap a and b).
    assert.deepEqual(names(c.candidates("standby")), ["b:1", "a:1", "c:1"]);
    const always = cluster(hosts, { balance: "random", random: () => 0.999999 });
    assert.deepEqual(names(always.candidates("standby")), ["a:1", "b:1", "c:1"]);
  });

  it("least_connections puts the host with fewest connections first, ties rotating", () => {
    const hosts = [
      host("p:1", "primary", base, 1),
      host("a:1", "standby", base, 1),
      host("b:1", "standby", base, 1),
      host("c:1", "standby", base, 1),
    ];
    const counts = new Map([["a:1", 5], ["b:1", 2], ["c:1", 2]]);
    const c = cluster(hosts, {
      balance: "least_connections",
      connections: (h) => counts.get(h.address) ?? 0,
    });
    assert.deepEqual(names(c.candidates("standby")), ["b:1", "c:1", "a:1"]);
    assert.deepEqual(names(c.candidates("standby")), ["b:1", "c:1", "a:1"]);
    assert.deepEqual(names(c.candidates("standby")), ["c:1", "b:1", "a:1"], "the tie rotates");
    counts.set("a:1", 0);
    assert.equal(names(c.candidates("standby"))[0], "a:1");
  });

  it("record() is the admin API's cluster entry", () => {
    const c = cluster(healthy());
    const record = c.record();
    assert.equal(record.name, "main");
    assert.deepEqual(record.hosts[1], {
      host: "db2:5432",
      role: "standby",
      up: true,
      lag_bytes: 100,
      timeline: 2,
      last_check: at.toISOString(),
      error: null,
      consecutive_failures: 0,
    });
  });

  it("hasCandidate() answers for /readyz without moving the rotation", () => {
    const hosts = healthy();
    const c = cluster(hosts);
    assert.ok(c.hasCandidate("standby") && c.hasCandidate("primary"));
    assert.ok(c.hasCandidate("standby"));
    assert.deepEqual(names(c.candidates("standby")), ["db2:5432", "db3:5432"], "rotation untouched");
    hosts[0]!.recordCheckFailure("refused", at);
    assert.equal(c.hasCandidate("primary"), false);
    assert.equal(c.hasCandidate("prefer-standby"), true);
    const split = cluster([host("a:1", "primary", 1n, 1), host("b:1", "primary", 1n, 1)]);
    assert.equal(split.hasCandidate("read-write"), false);
    assert.equal(split.hasCandidate("any"), false);
  });

  it("needs at least one host", () => {
    assert.throws(() => cluster([]), /cluster "main" needs at least one host/);
  });
});
