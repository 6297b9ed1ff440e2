/**
 * The connection pool metric families. Counters and the wait histogram are fed as pools work (through the
 * registry's PoolMetricsSink); the gauges are read from the registry's snapshot at scrape time. Every family
 * is rendered, with HELP and TYPE, even when no pool exists, so dashboards can rely on it. The `pool` label
 * is `route:user@host/database` (see poolLabel in src/pool/pool_registry.ts).
 */
import { PIN_REASON_NAMES, type PinReason } from "../pool/pin_reasons.ts";
import type { PoolMetricsSink, PoolSnapshot } from "../pool/pool_registry.ts";
import { Counter, Gauge, type HistogramSeries, LabeledHistogram, LATENCY_BUCKETS } from "./prometheus.ts";

export const PREPARED_RESULTS = ["hit", "miss", "eviction"] as const;
export type PreparedResult = typeof PREPARED_RESULTS[number];

export class PoolMetrics implements PoolMetricsSink {
  readonly #wait = new LabeledHistogram(
    "pgrelay_pool_wait_seconds",
    "Time clients waited for a server connection of the pool (0 when one was idle; wait_timeout when they gave up).",
    LATENCY_BUCKETS,
  );
  readonly #pinned = new Counter(
    "pgrelay_pool_pinned_total",
    "Clients pinned to their server connection in transaction mode, by the session state that pinned them.",
  );
  readonly #prepared = new Counter(
    "pgrelay_pool_prepared_total",
    "Protocol prepared statements in transaction mode: found on the borrowed server (hit), prepared on it first (miss), closed to make room (eviction).",
  );
  /** Each pool's wait series, so a lease observes its wait without building a label string. */
  readonly #waitSeries = new Map<string, HistogramSeries>();
  readonly #logins = new Counter(
    "pgrelay_pool_server_logins_total",
    "Logins pgrelay made to servers for its pools, by result.",
  );

  constructor() {
    for (const reason of PIN_REASON_NAMES) this.#pinned.add(0, { reason });
    for (const result of PREPARED_RESULTS) this.#prepared.add(0, { result });
  }

  waited(pool: string, seconds: number): void {
    let series = this.#waitSeries.get(pool);
    if (!series) this.#waitSeries.set(pool, series = this.#wait.series({ pool }));
    series.observe(seconds);
  }

  login(pool: string, result: "ok" | "failed"): void {
    this.#logins.add(1, { pool, result });
  }

  pinned(reason: PinReason): void {
    this.#pinned.add(1, { reason });
  }

  prepared(result: PreparedResult): void {
    this.#prepared.add(1, { result });
  }

  /** The pool families, with the gauges of `pools` (the registry's snapshot; empty without pooling). */
  render(pools: readonly PoolSnapshot[]): string {
    const clients = new Gauge(
      "pgrelay_pool_clients",
      "Clients of the pool holding a server connection (active) or waiting for one (waiting).",
    );
    const servers = new Gauge(
      "pgrelay_pool_servers",
      "Server connections of the pool: lent to a client (active), ready (idle), being reset after use (used), logging in (login).",
    );
    for (const snapshot of pools) {
      const pool = snapshot.pool;
      clients.set(snapshot.clients_active, { pool, state: "active" });
      clients.set(snapshot.clients_waiting, { pool, state: "waiting" });
      servers.set(snapshot.servers_active, { pool, state: "active" });
      servers.set(snapshot.servers_idle, { pool, state: "idle" });
      servers.set(snapshot.servers_used, { pool, state: "used" });
      servers.set(snapshot.servers_login, { pool, state: "login" });
    }
    return clients.render() + servers.render() + this.#wait.render() + this.#pinned.render() +
      this.#prepared.render() +
      this.#logins.render();
  }
}
