/**
 * Every pool of the process, by key: cluster, host, database, user and the route's pool settings (two routes
 * with the same settings to the same host share a pool). Holds the per-host `max_server_connections` slots,
 * empties the pools of a host that went down, closes pools a reload dropped, and answers `GET /pools`.
 */
import type { PinReason } from "./pin_reasons.ts";
import { Pool, type PoolEvents, type PoolStats, type ServerFactory, UNLIMITED_SLOTS } from "./pool.ts";
import { poolClosed } from "./pool_error.ts";
import type { PoolMode, PoolSettings } from "./pool_schema.ts";
import type { PoolTimers } from "./pool_timers.ts";
import { HostSlots } from "./host_slots.ts";

/** What names a pool (besides its settings). */
export interface PoolKey {
  /** The label of the route that first asked for it (routes with the same settings share it). */
  readonly route: string;
  readonly cluster: string;
  /** `HOST:PORT` as the cluster lists it. */
  readonly host: string;
  readonly database: string;
  readonly user: string;
}

/** One pool as `GET /pools` shows it. */
export interface PoolSnapshot extends PoolStats {
  route: string;
  cluster: string;
  host: string;
  database: string;
  user: string;
  mode: PoolMode;
  size: number;
  /** The metrics label of this pool: `route:user@host/database`. */
  pool: string;
}

/** What the registry reports to metrics (src/metrics/pool_metrics.ts implements it). */
export interface PoolMetricsSink {
  waited(pool: string, seconds: number): void;
  login(pool: string, result: "ok" | "failed"): void;
  pinned(reason: PinReason): void;
}

export interface PoolRegistryOptions<S> {
  /** Opens and closes server connections for the pool with this key (a login as key.user to key.database). */
  factory: (key: PoolKey, settings: PoolSettings) => ServerFactory<S>;
  /** Server connections to one host over all its pools; undefined: no cap. */
  maxServerConnections?: number | undefined;
  timers?: PoolTimers;
  metrics?: PoolMetricsSink;
  refillRetryMs?: number;
}

interface Held<S> {
  readonly key: PoolKey;
  readonly label: string;
  readonly pool: Pool<S>;
}

/** `route:user@host/database`: the `pool` label of the pool metrics. */
export const poolLabel = (key: PoolKey): string => `${key.route}:${key.user}@${key.host}/${key.database}`;

export class PoolRegistry<S> {
  readonly #options: PoolRegistryOptions<S>;
  readonly #pools = new Map<string, Held<S>>();
  readonly #hosts = new Map<string, HostSlots>();

  constructor(options: PoolRegistryOptions<S>) {
    this.#options = options;
  }

  /** How many pools exist. */
  get size(): number {
    return this.#pools.size;
  }

  /** The pool for this key and settings, created on first use. */
  pool(key: PoolKey, settings: PoolSettings): Pool<S> {
    const id = poolId(key, settings);
    const held = this.#pools.get(id);
    if (held && !held.pool.closed) return held.pool;
    const label = poolLabel(key);
    const metrics = this.#options.metrics;
    const events: PoolEvents = metrics
      ? {
        waited: (seconds) => metrics.waited(label, seconds),
        login: (result) => metrics.login(label, result),
        pinned: (reason) => metrics.pinned(reason),
      }
      : {};
    const pool = new Pool<S>({
      settings,
      factory: this.#options.factory(key, settings),
      slots: this.#slotsOf(key.host) ?? UNLIMITED_SLOTS,
      events,
      ...(this.#options.timers ? { timers: this.#options.timers } : {}),
      ...(this.#options.refillRetryMs !== undefined ? { refillRetryMs: this.#options.refillRetryMs } : {}),
    });
    this.#pools.set(id, { key, label, pool });
    return pool;
  }

  /**
   * A host went down (failover): its pools are closed and forgotten, waiters get `error` (default 57P03,
   * retry) and lent connections close when released. The next lease for that host builds a fresh pool.
   */
  drainHost(host: string, error: Error = poolClosed("emptied: its server went away")): number {
    return this.closeWhere((key) => key.host === host, error);
  }

  /** Closes and forgets the pools whose key and settings match (a reload dropped or changed their route). */
  closeWhere(
    match: (key: PoolKey, settings: PoolSettings) => boolean,
    error: Error = poolClosed("closed: the configuration changed"),
  ): number {
    let closed = 0;
    for (const [id, held] of this.#pools) {
      if (!match(held.key, held.pool.settings)) continue;
      this.#pools.delete(id);
      held.pool.close(error);
      this.#hosts.get(held.key.host)?.forget(held.pool);
      closed++;
    }
    return closed;
  }

  /** Closes every pool (shutdown). */
  closeAll(error: Error = poolClosed("closed: pgrelay is shutting down")): void {
    this.closeWhere(() => true, error);
  }

  /** Every pool, for `GET /pools` and the pool metrics. */
  snapshot(): PoolSnapshot[] {
    return [...this.#pools.values()].map(({ key, label, pool }) => ({
      route: key.route,
      cluster: key.cluster,
      host: key.host,
      database: key.database,
      user: key.user,
      mode: pool.settings.mode,
      size: pool.settings.size,
      pool: label,
      ...pool.stats(),
    }));
  }

  /** The slot gate of a host; undefined without max_server_connections. */
  hostSlots(host: string): HostSlots | undefined {
    return this.#slotsOf(host);
  }

  #slotsOf(host: string): HostSlots | undefined {
    const max = this.#options.maxServerConnections;
    if (max === undefined) return undefined;
    let slots = this.#hosts.get(host);
    if (!slots) this.#hosts.set(host, slots = new HostSlots(max));
    return slots;
  }
}

/** Pools are shared by key and equal settings. */
function poolId(key: PoolKey, settings: PoolSettings): string {
  return JSON.stringify([key.cluster, key.host, key.database, key.user, settings]);
}
