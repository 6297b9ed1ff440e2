/**
 * Runs a cluster's health checks: every `interval`, each host is probed (in parallel); a probe slower than
 * `timeout` fails. Results go into the hosts' {@link HostState}s, and every change is reported, so the
 * caller can end sessions on a host that went down and wake clients held for want of an eligible host.
 * The probe itself (connect, log in, run HEALTH_QUERY, parse) is injected: this file opens no socket.
 */
import type { HealthCheckResult, HostChange, HostState } from "./host_state.ts";

/** Checks one host; must give up when `signal` aborts (the timeout). Throws when the check fails. */
export type Probe = (host: HostState, signal: AbortSignal) => Promise<HealthCheckResult>;

export interface HealthCheckerOptions {
  readonly hosts: readonly HostState[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly probe: Probe;
  /** Called for every change a check made (up/down, role). */
  readonly onChange?: (host: HostState, change: HostChange) => void;
  /** Called with each check's duration in seconds (for the check histogram). */
  readonly onCheck?: (host: HostState, seconds: number, ok: boolean) => void;
  readonly now?: () => Date;
}

export class HealthChecker {
  readonly hosts: readonly HostState[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  #probe: Probe;
  #onChange: (host: HostState, change: HostChange) => void;
  #onCheck: (host: HostState, seconds: number, ok: boolean) => void;
  #now: () => Date;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  /** Held clients' wake-ups; each removes itself when its time runs out, so the set stays bounded. */
  #waiters = new Set<() => void>();

  constructor(options: HealthCheckerOptions) {
    this.hosts = options.hosts;
    this.intervalMs = options.intervalMs;
    this.timeoutMs = options.timeoutMs;
    this.#probe = options.probe;
    this.#onChange = options.onChange ?? (() => {});
    this.#onCheck = options.onCheck ?? (() => {});
    this.#now = options.now ?? (() => new Date());
  }

  /** Checks every host once, in parallel; resolves when all have answered or timed out. */
  async checkAll(): Promise<void> {
    await Promise.all(this.hosts.map((host) => this.checkHost(host)));
  }

  /** Checks one host and records the outcome; never throws. */
  async checkHost(host: HostState): Promise<void> {
    const controller = new AbortController();
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`health check timed out after ${this.timeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, this.timeoutMs);
    });
    let change: HostChange | undefined;
    let ok = false;
    try {
      const result = await Promise.race([this.#probe(host, controller.signal), timeout]);
      change = host.recordCheck(result, this.#now());
      ok = true;
    } catch (error) {
      change = host.recordCheckFailure(error instanceof Error ? error.message : String(error), this.#now());
    } finally {
      clearTimeout(timer);
    }
    this.#onCheck(host, (performance.now() - started) / 1000, ok);
    if (change) this.#changed(host, change);
  }

  /** Runs a round now and then one every interval (measured from the end of a round) until stop(). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const round = async () => {
      await this.checkAll();
      if (this.#running) this.#timer = setTimeout(round, this.intervalMs);
    };
    void round();
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wake();
  }

  /**
   * Resolves at the next change a check makes, at stop(), or after `ms`, whichever comes first (for clients
   * held while no host is eligible). `report()` wakes it too, for changes recorded elsewhere (connect failures).
   */
  nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiters;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });
  }

  /** Reports a change recorded outside a check (a refused connection) to listeners and waiters. */
  report(host: HostState, change: HostChange | undefined): void {
    if (change) this.#changed(host, change);
  }

  #changed(host: HostState, change: HostChange): void {
    this.#onChange(host, change);
    this.#wake();
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}
