/**
 * One client cannot stall pgrelay or grow it without bound through its per-session query tracking
 * (issue 9, findings 2 and 9). pgrelay runs in this process so that a 10 ms timer here measures pgrelay's
 * own event loop while one client floods it: a failing Parse, 150,000 Executes and a Sync; and, with the
 * audit log on, thousands of Binds and Parses with unique 30 KB names.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { AuditLog } from "../../src/audit/audit_log.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import { ProxyMetrics } from "../../src/metrics/proxy_metrics.ts";
import { MemoryAuditWriter } from "../support/memory_audit_writer.ts";
import { RUNTIME, startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { frontend, RawClient } from "../support/raw_client.ts";
import { concatBytes } from "../support/bytes.ts";

const EXECUTES = 150_000;
/**
 * The worst time pgrelay's event loop may be held while it relays the flood. The CPU time the process used
 * during a timer's gap is what is held to a bound; the wall clock gap only to a loose one, since on a shared
 * machine (2 cores, several test runs) the process can be descheduled for a while. The issue asks for 50 ms;
 * the bound is twice that because CPU time also counts the runtime's own threads and grows under load
 * (measured on a machine at load 8-26: at most 55 ms, mostly 10-40 ms). Before the fix the flood held the
 * event loop for 3-4 s of CPU on Deno and 130-150 ms on Bun with audit on.
 */
const MAX_BUSY_GAP_MS = 100;
const MAX_WALL_GAP_MS = 1000;
/** pgrelay's bound on requests timed per session (QueryTimer's capacity). */
const TRACKED_REQUESTS = 1024;
/** The audit tracker's default budgets (DEFAULT_TRACKER_LIMITS): statements and portals, and pending requests. */
const AUDIT_LIMITS = { maxNamed: 10_000, maxNamedBytes: 4 << 20, maxPending: 1024, maxPendingBytes: 4 << 20 };

/** Concatenates frames into one buffer, so the client sends them in big writes. */
const concat = concatBytes;

/** `count` copies of one frame, back to back. */
function repeated(frame: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(frame.length * count);
  for (let i = 0; i < count; i++) out.set(frame, i * frame.length);
  return out;
}

/**
 * Measures, until stopped, the worst gap between ticks of a 10 ms interval timer in this process: `wall` as
 * seen on the clock, and `busy`, the part of it this process spent on the CPU (a gap is no longer than the
 * CPU time the process used during it, so time spent descheduled on a loaded machine does not count).
 */
function gapMeter(): { stop(): { wall: number; busy: number } } {
  const cpu = () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  };
  let last = performance.now();
  let lastCpu = cpu();
  let wall = 0;
  let busy = 0;
  const tick = () => {
    const now = performance.now();
    const nowCpu = cpu();
    wall = Math.max(wall, now - last);
    busy = Math.max(busy, Math.min(now - last, nowCpu - lastCpu));
    last = now;
    lastCpu = nowCpu;
  };
  const interval = setInterval(tick, 10);
  return {
    stop() {
      tick();
      clearInterval(interval);
      return { wall, busy };
    },
  };
}

/** A sample's value; `name` is a regular expression (with its labels when the metric has several series). */
const metric = (text: string, name: string) =>
  Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN);

describe("per-session tracking is bounded and O(1) per frame", () => {
  let cluster: PostgresCluster;
  const proxies: Proxy[] = [];
  const gaps: Record<string, { wall: number; busy: number }> = {};

  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await cluster?.stop();
    console.log(`worst 10 ms timer gaps on ${RUNTIME} (ms): ${JSON.stringify(gaps)}`);
  });

  const start = async (audit: boolean) => {
    const metrics = new ProxyMetrics();
    const writer = new MemoryAuditWriter();
    const auditor = audit
      ? new AuditLog({ path: "-", queries: true, maxQueryLength: 4096, redactLiterals: false }, writer, {
        metrics,
      })
      : undefined;
    const proxy = await startTestProxy(cluster, { metrics, ...(auditor ? { auditor } : {}) });
    proxies.push(proxy);
    const client = await RawClient.connect("127.0.0.1", proxy.address.port);
    client.startup({ user: cluster.users.trust.user, database: "postgres" });
    await client.authenticate("");
    return { proxy, client, metrics, auditor };
  };

  for (const audit of [false, true]) {
    it(`a failing Parse, ${EXECUTES} Executes and a Sync (audit ${audit ? "on" : "off"}): the Sync is answered, no stall, tracking stays at its bound`, async () => {
      const { proxy, client, metrics, auditor } = await start(audit);
      const flood = concat([
        frontend.parse("", "select * from no_such_table_here"),
        repeated(frontend.execute(""), EXECUTES),
        frontend.sync(),
      ]);
      const meter = gapMeter();
      const started = performance.now();
      // Big writes: the whole flood in 256 KiB pieces.
      for (let at = 0; at < flood.length; at += 256 * 1024) {
        client.sendBytes(flood.subarray(at, at + 256 * 1024));
      }
      const answer = await client.readUntilReady(60_000);
      const elapsed = performance.now() - started;
      const gap = meter.stop();
      gaps[audit ? "audit_on" : "audit_off"] = { wall: Math.round(gap.wall), busy: Math.round(gap.busy) };
      assert.deepEqual(
        answer.map((m) => m.type),
        ["E", "Z"],
        "the failed Parse's error, then the Sync's ReadyForQuery",
      );
      const stalled = `flood took ${elapsed.toFixed(0)} ms, longest timer gap ${gap.wall.toFixed(0)} ms ` +
        `of which ${gap.busy.toFixed(0)} ms on the CPU`;
      assert.ok(
        gap.busy < MAX_BUSY_GAP_MS && gap.wall < MAX_WALL_GAP_MS,
        `pgrelay's event loop stalled: ${stalled}`,
      );
      const context = proxy.sessions[0]!;
      const timer = context.queryTracking!;
      assert.ok(timer.peakEntries <= TRACKED_REQUESTS, `query timer held ${timer.peakEntries} requests`);
      assert.equal(timer.entries, 0, "the ReadyForQuery emptied the queue");
      await auditor?.flush();
      const audited = context.auditTracking;
      if (audit) {
        assert.ok(audited, "the audit tracker reports its size");
        assert.ok(
          audited.peakEntries <= TRACKED_REQUESTS + 16,
          `audit tracker held ${audited.peakEntries} entries`,
        );
      }
      const text = metrics.render({
        sessions: proxy.sessions,
        bufferedBytes: 0,
        upstreamUp: 1,
        draining: false,
      });
      assert.ok(metric(text, "pgrelay_query_tracking_overflow_total") >= EXECUTES - TRACKED_REQUESTS, text);
      // Timing recovers after the ReadyForQuery that emptied the queue: the next query is timed again.
      const queriesBefore = metric(text, "pgrelay_queries_total");
      client.query("select 1");
      assert.deepEqual((await client.readUntilReady()).map((m) => m.type), ["T", "D", "C", "Z"]);
      const later = metrics.render({
        sessions: proxy.sessions,
        bufferedBytes: 0,
        upstreamUp: 1,
        draining: false,
      });
      assert.equal(metric(later, "pgrelay_queries_total"), queriesBefore + 1);
      await client.close();
    });
  }

  it("audit on: 4,000 Binds with unique 30 KB portal names and 4,000 Parses with unique 8 KB statement names in an aborted transaction stay within the tracker's budget", async () => {
    const { proxy, client, metrics, auditor } = await start(true);
    client.query("begin");
    await client.readUntilReady();
    client.query("select 1/0");
    assert.equal(
      (await client.readUntilReady()).at(-1)!.body[0],
      "E".charCodeAt(0),
      "the transaction is aborted",
    );
    const context = proxy.sessions[0]!;
    const limits = AUDIT_LIMITS;
    const portalName = "p".repeat(30 * 1024);
    const statementName = "s".repeat(8 * 1024);
    for (let batch = 0; batch < 40; batch++) {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 100; i++) {
        const n = `${batch}_${i}_`;
        frames.push(frontend.bind(n + portalName, "", []), frontend.parse(n + statementName, "select 1"));
      }
      frames.push(frontend.sync());
      client.sendBytes(concat(frames));
      const answer = await client.readUntilReady(60_000);
      assert.deepEqual(answer.map((m) => m.type), ["E", "Z"], "25P02, then the Sync's ReadyForQuery");
      await auditor!.flush();
      const usage = context.auditTracking!;
      assert.ok(
        usage.bytes <= limits.maxNamedBytes + limits.maxPendingBytes,
        `tracker holds ${usage.bytes} bytes`,
      );
    }
    const usage = context.auditTracking!;
    assert.ok(
      usage.peakBytes <= limits.maxNamedBytes + limits.maxPendingBytes,
      `tracker held ${usage.peakBytes} bytes at most`,
    );
    assert.ok(
      usage.peakEntries <= limits.maxNamed + limits.maxPending,
      `tracker held ${usage.peakEntries} entries at most`,
    );
    const text = metrics.render({
      sessions: proxy.sessions,
      bufferedBytes: 0,
      upstreamUp: 1,
      draining: false,
    });
    assert.ok(metric(text, 'pgrelay_audit_tracking_overflow_total\\{what="portals"\\}') > 3000, text);
    assert.ok(metric(text, 'pgrelay_audit_tracking_overflow_total\\{what="statements"\\}') > 3000, text);
    // The transaction ends: the server drops every portal, and so does the tracker.
    client.query("rollback");
    await client.readUntilReady();
    client.query("select 42");
    await client.readUntilReady();
    await auditor!.flush();
    const after = context.auditTracking!;
    assert.ok(
      after.bytes < limits.maxNamedBytes,
      `after the rollback the tracker holds ${after.bytes} bytes`,
    );
    await client.close();
  });
});
