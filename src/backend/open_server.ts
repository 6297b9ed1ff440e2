/**
 * Opens a server connection for a client session: its facts pick a route, the route a cluster and target,
 * and the cluster's first candidate that accepts is connected (connect retry), with the cluster's upstream
 * TLS (else `upstream_tls`) applied when asked. While no host is eligible the caller is held (up to the
 * router's hold time). Failures come back as values the client session turns into its FATAL.
 */
import type { Logger } from "../core/logger.ts";
import type { MetricsSink } from "../core/metrics_sink.ts";
import type { Connector, SocketAddress } from "../core/socket.ts";
import { NO_UPSTREAM_TLS, tlsForHost, type UpstreamTlsSettings } from "../core/tls_settings.ts";
import { acquire } from "../routing/acquire.ts";
import type { RouteFacts } from "../routing/route_table.ts";
import { hostAddress, type Router } from "../routing/router.ts";
import type { Target } from "../routing/target.ts";
import { ServerConnection, type ServerPlacement } from "./server_connection.ts";
import type { HostState } from "../routing/host_state.ts";
import { secureUpstream } from "./upstream_tls.ts";

export interface OpenServerRequest {
  readonly facts: RouteFacts;
  /** Apply upstream TLS (false for TLS passthrough, where the client's own TLS goes through). */
  readonly secure: boolean;
  /** Fields for the log lines of failed attempts (the session's context). */
  readonly logFields: () => Record<string, unknown>;
  /** True once the client left or the session ended: stop trying, the result is thrown away. */
  readonly abandoned: () => boolean;
  /** The route was chosen (before any connection is tried). */
  readonly routed?: (route: string) => void;
  /** A host is being tried now. */
  readonly trying?: (address: SocketAddress) => void;
}

export interface OpenServerDeps {
  readonly router: Router;
  readonly connect: Connector;
  readonly connectTimeoutMs: number;
  readonly upstreamTls: UpstreamTlsSettings | undefined;
  readonly metrics: MetricsSink;
  readonly logger: Logger;
}

export type OpenServerResult =
  | { readonly ok: true; readonly server: ServerConnection }
  | { readonly ok: false; readonly failure: "no_route" }
  | { readonly ok: false; readonly failure: "no_eligible_host"; readonly cluster: string; readonly target: Target; readonly reason: string }
  /** No health checks (the `upstream:` form): the host is unreachable, as before routing. */
  | { readonly ok: false; readonly failure: "unreachable"; readonly what: string; readonly error: Error }
  | { readonly ok: false; readonly failure: "abandoned" };

/** A connection attempt given up because its client left: not the host's failure. */
class Abandoned extends Error {}

export async function openServer(request: OpenServerRequest, deps: OpenServerDeps): Promise<OpenServerResult> {
  const { router, metrics, logger } = deps;
  const routed = router.route(request.facts);
  if (!routed) return { ok: false, failure: "no_route" };
  const { choice, cluster } = routed;
  request.routed?.(choice.route.label);
  const tls = request.secure ? cluster.tls ?? deps.upstreamTls ?? NO_UPSTREAM_TLS : NO_UPSTREAM_TLS;
  const timeoutMs = deps.connectTimeoutMs;
  const checker = cluster.checker;
  /** The last attempt's failure, reported as before routing when the cluster is one unchecked host. */
  let last: { what: string; error: Error } | undefined;
  const quiet = !checker && cluster.cluster.hosts.length === 1;
  let acquired;
  try {
    acquired = await acquire(cluster.cluster, choice.target, {
      connect: async (host) => {
        if (request.abandoned()) throw new Abandoned();
        const address = hostAddress(host.address);
        request.trying?.(address);
        let what = "pgrelay could not connect to upstream";
        try {
          const plain = await deps.connect(address, { timeoutMs });
          what = "pgrelay could not secure the connection to upstream";
          try {
            return await secureUpstream(plain, tlsForHost(tls, address.hostname), timeoutMs);
          } catch (error) {
            plain.destroy();
            throw error;
          }
        } catch (error) {
          last = { what, error: error as Error };
          metrics.upstreamConnectFailed();
          if (!quiet) {
            logger.log("warn", "upstream_connect_failed", {
              ...request.logFields(),
              cluster: cluster.settings.name,
              host: host.address,
              error: `${what} ${host.address}: ${(error as Error).message}`,
            });
          }
          throw error;
        }
      },
      isHostFailure: (error) => !(error instanceof Abandoned),
      holdMs: router.holdMs,
      ...(checker ? { nextChange: (ms: number) => checker.nextChange(ms) } : {}),
      report: (host, change) => checker?.report(host, change),
    });
  } catch (error) {
    if (!(error instanceof Abandoned)) throw error;
    return { ok: false, failure: "abandoned" };
  }
  if (!acquired.ok) {
    if (request.abandoned()) return { ok: false, failure: "abandoned" };
    if (!checker) {
      return {
        ok: false,
        failure: "unreachable",
        what: last?.what ?? "pgrelay could not connect to upstream",
        error: last?.error ?? new Error(acquired.reason),
      };
    }
    return { ok: false, failure: "no_eligible_host", cluster: cluster.settings.name, target: choice.target, reason: acquired.reason };
  }
  const address = hostAddress(acquired.host.address);
  const placement = { route: choice.route.label, cluster, target: choice.target, host: acquired.host };
  const server = new ServerConnection(acquired.connection, address, placement, router.bind(acquired.host));
  if (request.abandoned()) {
    server.destroy();
    return { ok: false, failure: "abandoned" };
  }
  return { ok: true, server };
}

/**
 * Opens a connection to one chosen host (a pool's), with the cluster's upstream TLS (else `upstream_tls`):
 * the pool chose the host, so there is no retry here. Throws when the host refuses, times out or fails TLS.
 */
export async function openServerTo(host: HostState, placement: ServerPlacement, deps: OpenServerDeps): Promise<ServerConnection> {
  const address = hostAddress(host.address);
  const tls = placement.cluster.tls ?? deps.upstreamTls ?? NO_UPSTREAM_TLS;
  let plain;
  try {
    plain = await deps.connect(address, { timeoutMs: deps.connectTimeoutMs });
  } catch (error) {
    deps.metrics.upstreamConnectFailed();
    throw error;
  }
  try {
    const socket = await secureUpstream(plain, tlsForHost(tls, address.hostname), deps.connectTimeoutMs);
    return new ServerConnection(socket, address, placement, deps.router.bind(host));
  } catch (error) {
    plain.destroy();
    throw error;
  }
}
