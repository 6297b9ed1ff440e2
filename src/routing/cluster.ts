/**
 * A cluster's choice of hosts for a target: the ordered candidates a session tries (first choice, then the
 * fallbacks for connect retry), from the hosts' health records. No sockets: health checks and connection
 * attempts report into the {@link HostState}s; this only reads them.
 *
 * The rules:
 * - Only hosts that are up are chosen, and only for targets their role suits (target.ts).
 * - Split brain: when several hosts claim to be primary, the one on the highest timeline wins and the
 *   others are never chosen (an old primary restarted without `standby.signal` is stale), not even after the
 *   winner goes down: the cluster remembers the highest timeline it has seen a primary on. When the highest
 *   timeline is shared or unknown, no claimant is chosen for any target: `primary` and `read-write` get no
 *   candidate and a reason naming the cluster and target (for FATAL 57P03), rather than a guess.
 * - A standby's lag is the winning primary's current LSN minus the standby's replay LSN; standbys further
 *   behind than `max_lag` are not chosen. Without a winning primary (none up, or undecided) lag cannot be
 *   measured and does not exclude a standby: that is when reads need the standbys most.
 * - `balance` orders the eligible standbys: `round_robin` rotates the start on every pick, `random` shuffles
 *   with the injected source, `least_connections` sorts by the injected per-host count (ties rotate).
 * - Order per target: `primary`/`read-write`: the primary. `standby`/`read-only`: balanced standbys.
 *   `prefer-standby`: balanced standbys, then the primary. `any`: every eligible host in configured order,
 *   as libpq tries its host list (hosts whose role no check has reported yet included).
 * - A host no health check watches (the `upstream:` form) that a refused connection took out is still
 *   offered, after the others: nothing else would ever bring it back.
 */
import { lagBytes } from "./health_probe.ts";
import type { HostRecord, HostState } from "./host_state.ts";
import { type Target, targetAcceptsRole } from "./target.ts";

/** How eligible standbys are ordered. */
export const BALANCES = {
  round_robin: "rotate the first choice on every pick",
  random: "shuffle on every pick",
  least_connections: "fewest connections first (ties rotate)",
} as const;
export type Balance = keyof typeof BALANCES;

export interface ClusterOptions {
  readonly name: string;
  /** In configured order. */
  readonly hosts: readonly HostState[];
  /** Standbys whose lag exceeds this many bytes are not chosen; undefined: no limit. */
  readonly maxLagBytes?: number | undefined;
  readonly balance?: Balance;
  /** A number in [0, 1), as Math.random; injected so tests can fix it. */
  readonly random?: () => number;
  /** The number of server connections open to a host now (for `least_connections`). */
  readonly connections?: (host: HostState) => number;
}

/** The outcome of a pick: hosts to try in order, or why there are none (for a 57P03 message). */
export type Candidates =
  | { readonly ok: true; readonly hosts: readonly HostState[] }
  | { readonly ok: false; readonly reason: string };

/** The primary the cluster believes in, or why it has none. */
type PrimaryVerdict =
  | { readonly kind: "one"; readonly host: HostState }
  | { readonly kind: "none" }
  | { readonly kind: "undecided"; readonly claimants: readonly HostState[] };

export class Cluster {
  readonly name: string;
  readonly hosts: readonly HostState[];
  readonly maxLagBytes: number | undefined;
  readonly balance: Balance;
  #random: () => number;
  #connections: (host: HostState) => number;
  #turn = 0;
  /** The highest timeline a primary of this cluster has been seen on (0: none yet). */
  #highestTimeline = 0;

  constructor(options: ClusterOptions) {
    if (options.hosts.length === 0) throw new RangeError(`cluster "${options.name}" needs at least one host`);
    this.name = options.name;
    this.hosts = options.hosts;
    this.maxLagBytes = options.maxLagBytes;
    this.balance = options.balance ?? "round_robin";
    this.#random = options.random ?? Math.random;
    this.#connections = options.connections ?? (() => 0);
  }

  /** The ordered hosts to try for `target`, or the reason there is none. Advances round-robin. */
  candidates(target: Target): Candidates {
    const verdict = this.#primary();
    const primary = verdict.kind === "one" ? verdict.host : undefined;
    let hosts: HostState[];
    if (target === "any") {
      hosts = this.#eligible(target, primary);
    } else {
      hosts = this.#balanced(this.#eligible(target, primary).filter((host) => host.role === "standby"));
      if (primary?.up && targetAcceptsRole(target, "primary")) hosts.push(primary);
    }
    // Nothing checks an unchecked host, so one a refused connection took out is still tried, last.
    for (const host of this.hosts) {
      if (!host.up && !host.checked && targetAcceptsRole(target, host.role)) hosts.push(host);
    }
    if (hosts.length > 0) return { ok: true, hosts };
    return { ok: false, reason: this.#whyNone(target, verdict) };
  }

  /** Whether `target` has an eligible host now (for `/readyz`); unlike {@link candidates} it moves nothing. */
  hasCandidate(target: Target): boolean {
    const verdict = this.#primary();
    return this.#eligible(target, verdict.kind === "one" ? verdict.host : undefined).length > 0 ||
      this.hosts.some((host) => !host.checked && targetAcceptsRole(target, host.role));
  }

  /** Hosts that are up, suit the target, and are the winning primary or a standby within max_lag. */
  #eligible(target: Target, primary: HostState | undefined): HostState[] {
    return this.hosts.filter((host) =>
      host.up && targetAcceptsRole(target, host.role) &&
      (host.role === "primary"
        ? host === primary
        : host.role === "standby"
        ? this.#withinLag(host, primary)
        : true)
    );
  }

  /** Lag in bytes behind the winning primary; undefined for a primary, an unknown position or no winner. */
  lagBytes(host: HostState): number | undefined {
    const verdict = this.#primary();
    return verdict.kind === "one" ? lagBehind(host, verdict.host) : undefined;
  }

  /** The admin API's `{"name", "hosts": [...]}` for this cluster. */
  record(): { name: string; hosts: HostRecord[] } {
    const verdict = this.#primary();
    const primary = verdict.kind === "one" ? verdict.host : undefined;
    return {
      name: this.name,
      hosts: this.hosts.map((host) => host.record(primary ? lagBehind(host, primary) : undefined)),
    };
  }

  /**
   * The primary to believe. Claimants are the hosts whose last passing check said primary (a refused
   * connection keeps that role, so a new primary that refused one connection does not hand the title to a
   * stale one). A claimant on a timeline below the highest this cluster has seen a primary on is stale,
   * whatever else is up: timelines only grow, so an old primary restarted without `standby.signal` is never
   * chosen again, even after the new one goes down. The winner may be down: then nothing serves `primary`.
   */
  #primary(): PrimaryVerdict {
    const claimants: HostState[] = [];
    for (const host of this.hosts) {
      if (host.role !== "primary") continue;
      claimants.push(host);
      if (host.timeline !== undefined && host.timeline > this.#highestTimeline) {
        this.#highestTimeline = host.timeline;
      }
    }
    const current = claimants.filter((host) =>
      host.timeline === undefined || host.timeline >= this.#highestTimeline
    );
    if (current.length === 0) return { kind: "none" };
    if (current.length === 1) return { kind: "one", host: current[0]! };
    return { kind: "undecided", claimants: current };
  }

  #withinLag(standby: HostState, primary: HostState | undefined): boolean {
    if (this.maxLagBytes === undefined || primary === undefined) return true;
    const lag = lagBehind(standby, primary);
    return lag === undefined || lag <= this.maxLagBytes;
  }

  #balanced(standbys: HostState[]): HostState[] {
    const n = standbys.length;
    if (n < 2) return standbys;
    if (this.balance === "random") {
      const shuffled = standbys.slice();
      for (let i = n - 1; i > 0; i--) {
        const j = Math.min(i, Math.floor(this.#random() * (i + 1)));
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      return shuffled;
    }
    const start = this.#turn++ % n;
    if (this.#turn >= Number.MAX_SAFE_INTEGER) this.#turn = 0;
    const rotated = [...standbys.slice(start), ...standbys.slice(0, start)];
    if (this.balance === "least_connections") {
      const counts = new Map(rotated.map((host) => [host, this.#connections(host)]));
      rotated.sort((a, b) => counts.get(a)! - counts.get(b)!); // stable: ties keep the rotation
    }
    return rotated;
  }

  #whyNone(target: Target, verdict: PrimaryVerdict): string {
    const head = `cluster "${this.name}" has no eligible host for target "${target}"`;
    if (verdict.kind === "undecided") {
      const who = verdict.claimants.map((host) => `${host.address} on timeline ${host.timeline ?? "unknown"}`)
        .join(", ");
      return `${head}: ${verdict.claimants.length} hosts claim to be primary (${who}) and which is current ` +
        `cannot be decided, so pgrelay refuses rather than guess`;
    }
    const primary = verdict.kind === "one" ? verdict.host : undefined;
    const states = this.hosts.map((host) => `${host.address} ${this.#describe(host, primary, verdict)}`);
    return `${head} (${states.join("; ")})`;
  }

  #describe(host: HostState, primary: HostState | undefined, verdict: PrimaryVerdict): string {
    if (!host.up) return `is down${host.error === undefined ? "" : `: ${host.error}`}`;
    if (host.role === "unknown") return "has not been checked yet";
    if (host.role === "primary") {
      if (host === primary) return "is the primary";
      const winner = verdict.kind === "one" ? verdict.host : undefined;
      return `claims to be primary on timeline ${host.timeline ?? "unknown"}, behind ${
        winner?.address ?? "another"
      } on timeline ${winner?.timeline ?? "unknown"}`;
    }
    const lag = primary ? lagBehind(host, primary) : undefined;
    if (lag !== undefined && this.maxLagBytes !== undefined && lag > this.maxLagBytes) {
      return `is a standby ${lag} bytes behind (max_lag ${this.maxLagBytes})`;
    }
    return "is a standby";
  }
}

/** `primary.lsn - host.lsn` in bytes (0 when ahead); undefined for the primary itself or unknown positions. */
function lagBehind(host: HostState, primary: HostState): number | undefined {
  if (host === primary || host.role !== "standby" || host.lsn === undefined || primary.lsn === undefined) {
    return undefined;
  }
  return Number(lagBytes(primary.lsn, host.lsn));
}
