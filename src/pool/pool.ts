/**
 * A pool of server connections for one (host, database, user), generic over the connection type `S` so it
 * runs without sockets: an injected factory opens (connect + login) and closes them, injected timers keep
 * time.
 *
 * - **Idle servers are lent LIFO**: the most recently used connection goes out first. It is the warmest
 *   (its backend's caches, its prepared statements), and the cold ones at the bottom of the stack age out
 *   with idle_timeout; FIFO would rotate through every connection and keep them all from ever idling out.
 * - **Waiters are served FIFO**: every server that becomes free (released or newly opened) goes to the
 *   oldest waiting client.
 * - Up to `size` connections, plus `reserve` more once a client has waited `reserve_timeout` (reserve
 *   connections are closed again when released with nobody waiting).
 * - A waiter gets {@link waitTimedOut} after `wait_timeout` and a client beyond `max_waiting` gets
 *   {@link tooManyWaiting} at once (both 53300, severity ERROR: the client stays connected).
 * - `min` connections are kept open (refilled after a close), idle ones beyond it close after `idle_timeout`,
 *   and a connection older than `lifetime` is replaced when next released (or found idle).
 * - A failed login is counted and its error handed to the oldest waiter; when no server is open or opening
 *   for the others either, all of them get it at once rather than waiting for nothing.
 * - With a {@link SlotGate} (the registry's `max_server_connections` per host), a new connection first needs
 *   a slot of its host; a pool that cannot get one is queued and offered the next free slot in turn.
 */
import type { PinReason } from "./pin_reasons.ts";
import { poolClosed, tooManyWaiting, waitTimedOut } from "./pool_error.ts";
import type { PoolSettings } from "./pool_schema.ts";
import { type PoolTimers, SYSTEM_TIMERS } from "./pool_timers.ts";

/** Opens and closes server connections of one pool (connect, TLS, login; the socket layer's job). */
export interface ServerFactory<S> {
  /** A logged-in server connection, ready for queries; rejects with why it could not log in. */
  open(): Promise<S>;
  /** Closes a connection (sends Terminate, closes the socket); must not throw. */
  close(server: S): void;
}

/** What a pool reports as it works (the registry turns these into metrics). */
export interface PoolEvents {
  /** A client got a server (or gave up at wait_timeout) after waiting this long; 0 when one was idle. */
  waited?(seconds: number): void;
  login?(result: "ok" | "failed"): void;
  pinned?(reason: PinReason): void;
}

/** A pool as a host's slot gate sees it. */
export interface SlotUser {
  /**
   * The gate holds a free slot for this pool: use it to open a connection for a waiter and return true, or
   * return false when nobody waits any more (the gate then frees the slot and forgets the pool).
   */
  offerSlot(): boolean;
  /** Close one idle connection, if the pool has one, to free its slot for a pool with waiters. */
  closeOneIdle(): boolean;
  /** Whether the pool has clients waiting that one more connection would serve. */
  wantsSlot(): boolean;
}

/** The server connections allowed to one host over all its pools (`max_server_connections`). */
export interface SlotGate {
  /** Takes a slot for one more connection; false when the host is full (with `queue`, the pool waits its turn). */
  take(pool: SlotUser, queue: boolean): boolean;
  /** A connection of `pool` closed (or failed to open): its slot is free again. */
  give(pool: SlotUser): void;
  /** Whether a pool other than `pool` waits for a slot (a released server then closes, freeing its slot). */
  contended(pool: SlotUser): boolean;
}

/** No per-host cap. */
export const UNLIMITED_SLOTS: SlotGate = { take: () => true, give: () => {}, contended: () => false };

export interface PoolOptions<S> {
  settings: PoolSettings;
  factory: ServerFactory<S>;
  timers?: PoolTimers;
  slots?: SlotGate;
  events?: PoolEvents;
  /** After a failed login with nobody waiting, wait this long before refilling `min` again (default 1 s). */
  refillRetryMs?: number;
}

/** Counts as `GET /pools` shows them. */
export interface PoolStats {
  /** Clients holding a server connection now. */
  clients_active: number;
  /** Clients waiting for one. */
  clients_waiting: number;
  /** Server connections lent to a client. */
  servers_active: number;
  /** Server connections ready to lend. */
  servers_idle: number;
  /** Server connections given back and being reset (reset_query, rollback) before they are idle again. */
  servers_used: number;
  /** Server connections being opened (connect, TLS, login). */
  servers_login: number;
  /** Lent connections pinned to their client by session state. */
  pinned: number;
  logins_ok: number;
  logins_failed: number;
  wait_timeouts: number;
  refused: number;
  /** The 99th percentile of the last 256 waits, in seconds; undefined before any. */
  wait_seconds_p99: number | undefined;
}

interface Entry<S> {
  readonly server: S;
  readonly createdAt: number;
  readonly generation: number;
  idleSince: number;
  state: "active" | "idle" | "used";
  pinned: PinReason | undefined;
}

interface Waiter<S> {
  readonly since: number;
  readonly resolve: (server: S) => void;
  readonly reject: (error: Error) => void;
  waitTimer: unknown;
  reserveTimer: unknown;
  prev: Waiter<S> | undefined;
  next: Waiter<S> | undefined;
  queued: boolean;
}

const WAIT_SAMPLES = 256;

export class Pool<S> implements SlotUser {
  readonly settings: PoolSettings;
  readonly #factory: ServerFactory<S>;
  readonly #timers: PoolTimers;
  readonly #slots: SlotGate;
  readonly #events: PoolEvents;
  readonly #refillRetryMs: number;
  readonly #entries = new Map<S, Entry<S>>();
  /** LIFO: the top (end) is the most recently released; index 0 the longest idle. */
  readonly #idle: Entry<S>[] = [];
  #head: Waiter<S> | undefined;
  #tail: Waiter<S> | undefined;
  #waiting = 0;
  #opening = 0;
  #used = 0;
  #pinned = 0;
  /** Bumped by drain(): connections of an older generation are closed, never lent again. */
  #generation = 0;
  #closed = false;
  #sweepTimer: unknown;
  #sweepAt = Infinity;
  #refillTimer: unknown;
  #loginsOk = 0;
  #loginsFailed = 0;
  #timeouts = 0;
  #refused = 0;
  readonly #waits = new Float64Array(WAIT_SAMPLES);
  #waitCount = 0;

  constructor(options: PoolOptions<S>) {
    this.settings = options.settings;
    this.#factory = options.factory;
    this.#timers = options.timers ?? SYSTEM_TIMERS;
    this.#slots = options.slots ?? UNLIMITED_SLOTS;
    this.#events = options.events ?? {};
    this.#refillRetryMs = options.refillRetryMs ?? 1000;
    this.#refill();
  }

  /** Open server connections (lent, idle and being reset), not counting those still logging in. */
  get open(): number {
    return this.#entries.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * A server connection for one client: an idle one at once, else a new one (within size, or size + reserve
   * once the client has waited reserve_timeout), else the next released one. Rejects with a
   * {@link PoolError} (53300) at wait_timeout or when max_waiting clients already wait, with the factory's
   * error when the login for it failed, and with 57P03 when the pool is closed or emptied meanwhile.
   */
  lease(): Promise<S> {
    const server = this.tryLease();
    if (server !== undefined) return Promise.resolve(server);
    if (this.#closed) return Promise.reject(poolClosed("closed"));
    const { size, maxWaiting, waitTimeoutMs, reserve, reserveTimeoutMs } = this.settings;
    // Clients a connection being opened, or one that may still be opened within size, will serve are not
    // "waiting" in max_waiting's sense.
    const servable = Math.max(this.#opening, size - this.#entries.size);
    if (this.#waiting >= maxWaiting + servable) {
      this.#refused++;
      return Promise.reject(tooManyWaiting(maxWaiting));
    }
    return new Promise<S>((resolve, reject) => {
      const waiter: Waiter<S> = {
        since: this.#timers.now(),
        resolve,
        reject,
        waitTimer: undefined,
        reserveTimer: undefined,
        prev: this.#tail,
        next: undefined,
        queued: true,
      };
      if (this.#tail) this.#tail.next = waiter;
      else this.#head = waiter;
      this.#tail = waiter;
      this.#waiting++;
      waiter.waitTimer = this.#timers.setTimeout(() => {
        if (!waiter.queued) return;
        this.#unqueue(waiter);
        this.#timeouts++;
        this.#observeWait(waitTimeoutMs / 1000);
        reject(waitTimedOut(waitTimeoutMs));
      }, waitTimeoutMs);
      if (reserve > 0) {
        waiter.reserveTimer = this.#timers.setTimeout(() => {
          waiter.reserveTimer = undefined;
          if (waiter.queued) this.#grow();
        }, reserveTimeoutMs);
      }
      this.#grow();
    });
  }

  /**
   * An idle server connection at once, without a promise (the per-transaction fast path), or undefined when
   * none is idle (then call lease()). Never overtakes a waiter: while clients wait, no connection is idle.
   */
  tryLease(): S | undefined {
    if (this.#closed) return undefined;
    if (this.#entries.size + this.#opening < this.settings.min) this.#refill();
    const idle = this.#takeIdle();
    if (!idle) return undefined;
    this.#observeWait(0);
    return idle.server;
  }

  /**
   * Takes back a lent connection (exactly once per lease). `reusable: false` (its client left mid-transaction,
   * the link broke, the reset failed) closes it, and a new one is opened if clients wait. A reusable one goes to the oldest
   * waiter, or back to the idle stack; it is closed instead when older than lifetime, beyond size with
   * nobody waiting, emptied by drain(), or when another pool of its host waits for a slot.
   */
  release(server: S, options: { reusable: boolean }): void {
    const entry = this.#entries.get(server);
    if (!entry || entry.state === "idle") return;
    this.#leave(entry);
    if (
      !options.reusable || this.#closed || entry.generation !== this.#generation || this.#expired(entry) ||
      this.#slots.contended(this)
    ) {
      this.#destroy(entry);
      this.#grow();
      this.#refill();
      return;
    }
    this.#hand(entry);
  }

  /**
   * The client is gone and its connection is being reset (reset_query, a rollback) before release(): it
   * counts as `servers_used` until then.
   */
  resetting(server: S): void {
    const entry = this.#entries.get(server);
    if (!entry || entry.state !== "active") return;
    this.#leave(entry);
    entry.state = "used";
    this.#used++;
  }

  /** The lent connection holds session state that pins it to its client (counted until unpin or release). */
  pin(server: S, reason: PinReason): void {
    const entry = this.#entries.get(server);
    if (!entry || entry.state !== "active") return;
    if (entry.pinned === undefined) this.#pinned++;
    entry.pinned = reason;
    this.#events.pinned?.(reason);
  }

  unpin(server: S): void {
    const entry = this.#entries.get(server);
    if (entry?.pinned === undefined) return;
    entry.pinned = undefined;
    this.#pinned--;
  }

  /**
   * Empties the pool (its host went down, or failover): idle connections close now, lent ones close when
   * released, logins in flight close when they finish, and waiters are rejected with `error` (default: 57P03,
   * retry) so the caller can route them elsewhere. The pool stays usable: the next lease opens new connections
   * (and refills min), so a host that is down is not hammered meanwhile.
   */
  drain(error: Error = poolClosed("emptied: its server went away")): void {
    this.#generation++;
    this.#clearTimer("sweep");
    this.#clearTimer("refill");
    for (const entry of this.#idle.splice(0)) this.#destroy(entry);
    this.#rejectAll(error);
  }

  /** Closes the pool for good (reload dropped its route, shutdown): drain() and refuse further leases. */
  close(error: Error = poolClosed("closed")): void {
    this.#closed = true;
    this.drain(error);
  }

  stats(): PoolStats {
    const lent = this.#entries.size - this.#idle.length - this.#used;
    return {
      clients_active: lent,
      clients_waiting: this.#waiting,
      servers_active: lent,
      servers_idle: this.#idle.length,
      servers_used: this.#used,
      servers_login: this.#opening,
      pinned: this.#pinned,
      logins_ok: this.#loginsOk,
      logins_failed: this.#loginsFailed,
      wait_timeouts: this.#timeouts,
      refused: this.#refused,
      wait_seconds_p99: this.#p99(),
    };
  }

  offerSlot(): boolean {
    if (!this.wantsSlot()) return false;
    this.#open();
    return true;
  }

  wantsSlot(): boolean {
    return !this.#closed && this.#waiting > this.#opening &&
      this.#entries.size + this.#opening < this.#limit();
  }

  closeOneIdle(): boolean {
    const entry = this.#idle.shift(); // the longest idle
    if (!entry) return false;
    this.#destroy(entry);
    return true;
  }

  /** An idle connection, skipping (and closing) those past their lifetime. */
  #takeIdle(): Entry<S> | undefined {
    let entry: Entry<S> | undefined;
    while ((entry = this.#idle.pop())) {
      if (this.#expired(entry)) {
        this.#destroy(entry);
        this.#refill();
        continue;
      }
      entry.state = "active";
      return entry;
    }
    return undefined;
  }

  /** Opens connections while waiters outnumber the logins in flight and the limit and host slots allow. */
  #grow(): void {
    while (!this.#closed && this.#waiting > this.#opening) {
      if (this.#entries.size + this.#opening >= this.#limit()) return;
      if (!this.#slots.take(this, true)) return;
      this.#open();
    }
  }

  /** size, plus one reserve connection per client that has waited reserve_timeout (up to reserve). */
  #limit(): number {
    const { size, reserve, reserveTimeoutMs } = this.settings;
    if (reserve === 0) return size;
    const now = this.#timers.now();
    let late = 0;
    for (let waiter = this.#head; waiter && late < reserve; waiter = waiter.next) {
      if (now - waiter.since < reserveTimeoutMs) break;
      late++;
    }
    return size + late;
  }

  /** Keeps min connections open (without queueing for a host slot: min yields to clients that wait). */
  #refill(): void {
    if (this.#refillTimer !== undefined) return;
    while (!this.#closed && this.#entries.size + this.#opening < this.settings.min) {
      if (!this.#slots.take(this, false)) return;
      this.#open();
    }
  }

  #open(): void {
    this.#opening++;
    const generation = this.#generation;
    let opened: Promise<S>;
    try {
      opened = this.#factory.open();
    } catch (error) {
      opened = Promise.reject(error);
    }
    opened.then(
      (server) => {
        this.#opening--;
        this.#loginsOk++;
        this.#events.login?.("ok");
        const now = this.#timers.now();
        const entry: Entry<S> = {
          server,
          createdAt: now,
          generation,
          idleSince: now,
          state: "active",
          pinned: undefined,
        };
        this.#entries.set(server, entry);
        if (this.#closed || generation !== this.#generation) {
          this.#destroy(entry);
          return;
        }
        this.#hand(entry);
      },
      (error: unknown) => {
        this.#opening--;
        this.#loginsFailed++;
        this.#events.login?.("failed");
        this.#slots.give(this);
        const reason = error instanceof Error ? error : new Error(String(error));
        if (this.#entries.size === 0 && this.#opening === 0) {
          this.#rejectAll(reason); // nothing open or opening could ever serve them
        } else if (this.#waiting > this.#opening) {
          const head = this.#head!;
          this.#unqueue(head);
          head.reject(reason);
        }
        if (
          this.#waiting === 0 && this.#entries.size + this.#opening < this.settings.min && !this.#closed &&
          this.#refillTimer === undefined
        ) {
          this.#refillTimer = this.#timers.setTimeout(() => {
            this.#refillTimer = undefined;
            this.#refill();
          }, this.#refillRetryMs);
        }
        this.#grow();
      },
    );
  }

  /** A connection is free: the oldest waiter gets it, else it goes idle (or closes, beyond size). */
  #hand(entry: Entry<S>): void {
    const waiter = this.#head;
    if (waiter) {
      this.#unqueue(waiter);
      entry.state = "active";
      this.#observeWait((this.#timers.now() - waiter.since) / 1000);
      waiter.resolve(entry.server);
      return;
    }
    if (this.#entries.size > this.settings.size) {
      this.#destroy(entry); // a reserve connection nobody needs any more
      return;
    }
    entry.state = "idle";
    entry.idleSince = this.#timers.now();
    this.#idle.push(entry);
    this.#scheduleSweep();
  }

  /** Leaves the lent (or used) state, ahead of going idle, to a waiter, or closing. */
  #leave(entry: Entry<S>): void {
    if (entry.state === "used") this.#used--;
    entry.state = "active";
    if (entry.pinned !== undefined) {
      entry.pinned = undefined;
      this.#pinned--;
    }
  }

  #destroy(entry: Entry<S>): void {
    if (!this.#entries.delete(entry.server)) return;
    if (entry.state === "used") this.#used--;
    if (entry.pinned !== undefined) this.#pinned--;
    try {
      this.#factory.close(entry.server);
    } finally {
      this.#slots.give(this);
    }
  }

  #expired(entry: Entry<S>): boolean {
    const { lifetimeMs } = this.settings;
    return lifetimeMs > 0 && this.#timers.now() - entry.createdAt >= lifetimeMs;
  }

  /**
   * One timer for the idle stack: fires when its longest-idle entry reaches idle_timeout or lifetime (a lent
   * connection past its lifetime is replaced at release, an idle one at the sweep or when found at lease).
   */
  #scheduleSweep(): void {
    const { idleTimeoutMs, lifetimeMs } = this.settings;
    let due = Infinity;
    const oldest = this.#idle[0];
    if (oldest && idleTimeoutMs > 0 && this.#entries.size > this.settings.min) {
      due = oldest.idleSince + idleTimeoutMs;
    }
    // O(1) per release: the bottom of the stack stands for the rest (the sweep checks every idle entry).
    if (oldest && lifetimeMs > 0) due = Math.min(due, oldest.createdAt + lifetimeMs);
    if (due === this.#sweepAt) return;
    this.#clearTimer("sweep");
    if (due === Infinity) return;
    this.#sweepAt = due;
    this.#sweepTimer = this.#timers.setTimeout(() => {
      this.#sweepTimer = undefined;
      this.#sweepAt = Infinity;
      this.#sweep();
    }, Math.max(0, due - this.#timers.now()));
  }

  #sweep(): void {
    const now = this.#timers.now();
    const { idleTimeoutMs, min } = this.settings;
    for (let i = 0; i < this.#idle.length;) {
      const entry = this.#idle[i]!;
      const idleTooLong = idleTimeoutMs > 0 && now - entry.idleSince >= idleTimeoutMs &&
        this.#entries.size > min;
      if (idleTooLong || this.#expired(entry)) {
        this.#idle.splice(i, 1);
        this.#destroy(entry);
      } else {
        i++;
      }
    }
    this.#refill();
    this.#scheduleSweep();
  }

  #unqueue(waiter: Waiter<S>): void {
    if (!waiter.queued) return;
    waiter.queued = false;
    if (waiter.prev) waiter.prev.next = waiter.next;
    else this.#head = waiter.next;
    if (waiter.next) waiter.next.prev = waiter.prev;
    else this.#tail = waiter.prev;
    waiter.prev = waiter.next = undefined;
    this.#waiting--;
    this.#timers.clearTimeout(waiter.waitTimer);
    if (waiter.reserveTimer !== undefined) this.#timers.clearTimeout(waiter.reserveTimer);
  }

  #rejectAll(error: Error): void {
    let waiter: Waiter<S> | undefined;
    while ((waiter = this.#head)) {
      this.#unqueue(waiter);
      waiter.reject(error);
    }
  }

  #clearTimer(which: "sweep" | "refill"): void {
    if (which === "sweep") {
      if (this.#sweepTimer !== undefined) this.#timers.clearTimeout(this.#sweepTimer);
      this.#sweepTimer = undefined;
      this.#sweepAt = Infinity;
    } else {
      if (this.#refillTimer !== undefined) this.#timers.clearTimeout(this.#refillTimer);
      this.#refillTimer = undefined;
    }
  }

  #observeWait(seconds: number): void {
    this.#waits[this.#waitCount++ % WAIT_SAMPLES] = seconds;
    this.#events.waited?.(seconds);
  }

  #p99(): number | undefined {
    const count = Math.min(this.#waitCount, WAIT_SAMPLES);
    if (count === 0) return undefined;
    const sorted = this.#waits.slice(0, count).sort();
    return sorted[Math.min(count - 1, Math.ceil(count * 0.99) - 1)];
  }
}
