import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HealthChecker } from "../../src/routing/health_checker.ts";
import type {
  HealthCheckResult,
  HostChange,
  HostState as HostStateType,
} from "../../src/routing/host_state.ts";
import { HostState } from "../../src/routing/host_state.ts";

const primary: HealthCheckResult = { role: "primary", lsn: 100n, timeline: 1 };
const standby: HealthCheckResult = { role: "standby", lsn: 90n, timeline: 1 };

describe("health checker", () => {
  it("records each host's answer and reports the changes", async () => {
    const hosts = [new HostState("a:1"), new HostState("b:1"), new HostState("c:1")];
    const answers = new Map<string, () => Promise<HealthCheckResult>>([
      ["a:1", () => Promise.resolve(primary)],
      ["b:1", () => Promise.resolve(standby)],
      ["c:1", () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:1"))],
    ]);
    const changes: [string, HostChange][] = [];
    const checks: [string, boolean][] = [];
    const checker = new HealthChecker({
      hosts,
      intervalMs: 1000,
      timeoutMs: 5000,
      probe: (host) => answers.get(host.address)!(),
      onChange: (host, change) => changes.push([host.address, change]),
      onCheck: (host, seconds, ok) => {
        assert.ok(seconds >= 0);
        checks.push([host.address, ok]);
      },
    });
    await checker.checkAll();
    assert.deepEqual(hosts.map((h) => [h.role, h.up]), [["primary", true], ["standby", true], [
      "unknown",
      false,
    ]]);
    assert.equal(hosts[2]!.error, "connect ECONNREFUSED 127.0.0.1:1");
    assert.deepEqual(checks.sort(), [["a:1", true], ["b:1", true], ["c:1", false]]);
    assert.deepEqual(changes.map(([address, c]) => [address, c.up, c.role]).sort(), [
      ["a:1", true, "primary"],
      ["b:1", true, "standby"],
      ["c:1", false, "unknown"],
    ]);
    changes.length = 0;
    await checker.checkAll();
    assert.deepEqual(changes, [], "nothing changed the second time");
  });

  it("fails a check slower than the timeout and aborts its probe", async () => {
    const host = new HostState("slow:1");
    let aborted: unknown;
    const checker = new HealthChecker({
      hosts: [host],
      intervalMs: 1000,
      timeoutMs: 20,
      probe: (_host, signal) =>
        new Promise((_, reject) => {
          signal.addEventListener("abort", () => {
            aborted = signal.reason;
            reject(signal.reason);
          });
        }),
    });
    await checker.checkHost(host);
    assert.equal(host.up, false);
    assert.equal(host.error, "health check timed out after 20 ms");
    assert.ok(aborted instanceof Error);
  });

  it("start() checks now and every interval until stop()", async () => {
    const host = new HostState("a:1");
    let probes = 0;
    const checker = new HealthChecker({
      hosts: [host],
      intervalMs: 5,
      timeoutMs: 1000,
      probe: () => {
        probes++;
        return Promise.resolve(primary);
      },
    });
    checker.start();
    checker.start(); // idempotent
    const deadline = Date.now() + 30_000;
    while (probes < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    checker.stop();
    assert.ok(probes >= 3, `probed ${probes} times`);
    const after = probes;
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(probes <= after + 1, "stopped (at most the round in flight finishes)");
  });

  it("nextChange() wakes held clients at a change, a report, stop(), or their time limit", async () => {
    const host: HostStateType = new HostState("a:1");
    let answer: HealthCheckResult | Error = new Error("refused");
    const checker = new HealthChecker({
      hosts: [host],
      intervalMs: 1000,
      timeoutMs: 1000,
      probe: () => answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer),
    });
    let woke = false;
    const held = checker.nextChange(60_000).then(() => woke = true);
    await checker.checkAll(); // unknown/up → down: a change
    await held;
    assert.ok(woke);

    const viaReport = checker.nextChange(60_000);
    checker.report(host, undefined); // no change: still waiting
    answer = primary;
    await checker.checkAll(); // back up
    await viaReport;

    const started = Date.now();
    await checker.nextChange(10); // nothing happens: the limit
    assert.ok(Date.now() - started >= 5);

    const atStop = checker.nextChange(60_000);
    checker.stop();
    await atStop;
  });
});
