/**
 * The router a running pgrelay holds: the route table, one {@link Cluster} per configured cluster with its
 * hosts' health records, the clusters' upstream TLS, and (once started) a {@link HealthChecker} per cluster
 * with health settings. Built from the config; a reload builds a new one that keeps the hosts' records
 * (same cluster name and address), so sessions bound to a host are still found when checks mark it down.
 * No sockets: the probe is given to {@link Router.start}.
 */
import type { SocketAddress } from "../core/socket.ts";
import type { UpstreamTlsSettings } from "../core/tls_settings.ts";
import { parseAddress } from "../config/units.ts";
import { Cluster } from "./cluster.ts";
import type { ClusterSettings, HealthSettings } from "./cluster_schema.ts";
import { DEFAULT_HOLD_MS } from "./acquire.ts";
import { HealthChecker, type Probe } from "./health_checker.ts";
import { type HostChange, HostState } from "./host_state.ts";
import { singleUpstream } from "./cluster_schema.ts";
import { type RouteChoice, type RouteFacts, RouteTable } from "./route_table.ts";
import type { RouteRule } from "./route_table.ts";

/** A cluster as the router runs it. */
export interface RoutedCluster {
  readonly settings: ClusterSettings;
  readonly cluster: Cluster;
  /** Upstream TLS for this cluster's hosts; undefined: the global upstream_tls. */
  readonly tls: UpstreamTlsSettings | undefined;
  /** Set once started, for clusters with health settings. */
  checker: HealthChecker | undefined;
}

/** Builds the probe of a cluster's hosts (connect, TLS, log in as health.user, HEALTH_QUERY). */
export type ProbeFactory = (cluster: RoutedCluster, health: HealthSettings) => Probe;

export interface RouterEvents {
  /** A host changed (up/down, role); `change.up` false after `wasUp` true: its sessions must end. */
  hostChanged?(cluster: string, host: HostState, change: HostChange): void;
  /** A health check finished, with its duration. */
  checked?(cluster: string, host: HostState, seconds: number, ok: boolean): void;
}

export class Router {
  readonly table: RouteTable;
  readonly clusters: ReadonlyMap<string, RoutedCluster>;
  /** How long a client is held while its route has no eligible host. */
  readonly holdMs: number;
  readonly healthPasswords: ReadonlyMap<string, string>;
  readonly healthRequireAuth: readonly string[] | undefined;
  #events: RouterEvents = {};
  /** Sessions bound to each host now, for `balance: least_connections`. */
  #connections: Map<HostState, number>;
  #started = false;

  constructor(options: {
    clusters: readonly ClusterSettings[];
    routes: readonly RouteRule[];
    holdMs?: number | undefined;
    tlsOf?: (settings: ClusterSettings) => UpstreamTlsSettings | undefined;
    /** health.user name → its plaintext password (from auth.file). */
    healthPasswords?: ReadonlyMap<string, string>;
    /** auth.upstream_require_auth: what health.user's login may answer. */
    healthRequireAuth?: readonly string[] | undefined;
    /** The router this one replaces: its hosts' records are kept. */
    previous?: Router | undefined;
  }) {
    this.healthRequireAuth = options.healthRequireAuth;
    this.healthPasswords = options.healthPasswords ?? new Map();
    // Shared with the router this one replaces: sessions bound before a reload still count.
    this.#connections = options.previous ? options.previous.#connections : new Map();
    const connections = this.#connections;
    this.table = new RouteTable(options.routes);
    this.holdMs = options.holdMs ?? DEFAULT_HOLD_MS;
    const clusters = new Map<string, RoutedCluster>();
    for (const settings of options.clusters) {
      const before = options.previous?.clusters.get(settings.name)?.cluster.hosts;
      const hosts = settings.hosts.map((address) =>
        before?.find((host) => host.address === address) ?? new HostState(address)
      );
      clusters.set(settings.name, {
        settings,
        cluster: new Cluster({
          name: settings.name,
          hosts,
          maxLagBytes: settings.maxLagBytes,
          balance: settings.balance,
          connections: (host) => connections.get(host) ?? 0,
        }),
        tls: options.tlsOf?.(settings),
        checker: undefined,
      });
    }
    this.clusters = clusters;
  }

  /** The route for these facts and its cluster, or undefined when no route matches. */
  route(facts: RouteFacts): { choice: RouteChoice; cluster: RoutedCluster } | undefined {
    const choice = this.table.route(facts);
    if (!choice) return undefined;
    const cluster = this.clusters.get(choice.cluster);
    return cluster ? { choice, cluster } : undefined;
  }

  /** A session is bound to `host` (counted for least_connections); `release` undoes it once. */
  bind(host: HostState): () => void {
    const connections = this.#connections;
    connections.set(host, (connections.get(host) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (connections.get(host) ?? 1) - 1;
      if (left > 0) connections.set(host, left);
      else connections.delete(host);
    };
  }

  /** Sets who hears of host changes and checks (the proxy: it ends sessions on a host that went down). */
  listen(events: RouterEvents): void {
    this.#events = events;
  }

  /** Starts the health checks of every cluster with health settings. */
  start(probeOf: ProbeFactory): void {
    if (this.#started) return;
    this.#started = true;
    for (const routed of this.clusters.values()) {
      const health = routed.settings.health;
      if (!health) continue;
      const name = routed.settings.name;
      routed.checker = new HealthChecker({
        hosts: routed.cluster.hosts,
        intervalMs: health.intervalMs,
        timeoutMs: health.timeoutMs,
        probe: probeOf(routed, health),
        onChange: (host, change) => this.#events.hostChanged?.(name, host, change),
        onCheck: (host, seconds, ok) => this.#events.checked?.(name, host, seconds, ok),
      });
      routed.checker.start();
    }
  }

  /** Stops every health check (held clients wake and see what there is). */
  stop(): void {
    for (const routed of this.clusters.values()) {
      routed.checker?.stop();
      routed.checker = undefined;
    }
    this.#started = false;
  }

  /** Whether every route has an eligible host now (for /readyz), with the routes that have none. */
  readiness(): { ready: boolean; missing: string[] } {
    const missing: string[] = [];
    for (const rule of this.table.rules) {
      const routed = this.clusters.get(rule.cluster);
      if (!routed || !routed.cluster.hasCandidate(rule.target)) {
        missing.push(`${rule.label} (cluster "${rule.cluster}", target ${rule.target})`);
      }
    }
    return { ready: missing.length === 0, missing };
  }

  /** The admin API's `{"clusters": [...]}`. */
  records(): { clusters: ReturnType<Cluster["record"]>[] } {
    return { clusters: [...this.clusters.values()].map((routed) => routed.cluster.record()) };
  }
}

/** `HOST:PORT` (IPv6 in brackets) as a socket address. */
export function hostAddress(text: string): SocketAddress {
  return parseAddress(text);
}

/** The `upstream: HOST:PORT` form: one unchecked cluster of one host, one route with target `any`. */
export function singleUpstreamRouter(upstream: SocketAddress, tls: UpstreamTlsSettings | undefined): Router {
  const address = upstream.hostname.includes(":")
    ? `[${upstream.hostname}]:${upstream.port}`
    : `${upstream.hostname}:${upstream.port}`;
  const { clusters, routes } = singleUpstream(address);
  return new Router({ clusters, routes, tlsOf: () => tls });
}
