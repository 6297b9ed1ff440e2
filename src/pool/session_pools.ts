/**
 * The pools of pooled routes as client sessions use them: a pool per (route settings, cluster, host,
 * database, user) in a {@link PoolRegistry}, whose server connections pgrelay logs in itself with the
 * ClientKey its last client of that user proved (auth.mode scram), then hands to one client at a time.
 * The host is chosen as for unpooled sessions (the route's target, connect retry, holding while no host is
 * eligible); the pool lends a connection to that host.
 */
import { openServerTo } from "../backend/open_server.ts";
import type { ServerConnection } from "../backend/server_connection.ts";
import { exchange, observeServer, parkServer } from "../backend/server_exchange.ts";
import type { Logger } from "../core/logger.ts";
import type { MetricsSink } from "../core/metrics_sink.ts";
import { type ClientLogin, loginUpstream } from "../core/scram_login.ts";
import type { Connector } from "../core/socket.ts";
import type { UpstreamTlsSettings } from "../core/tls_settings.ts";
import type { UpstreamAuthMethod } from "../backend/upstream_auth.ts";
import type { PooledRoute, Pools } from "../frontend/pooled_route.ts";
import { ClientError } from "../protocol/client_error.ts";
import { decodeErrorFields } from "../protocol/error_response.ts";
import { startupMessage } from "../protocol/frontend_messages.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";
import { acquire } from "../routing/acquire.ts";
import type { HostState } from "../routing/host_state.ts";
import type { RouteFacts } from "../routing/route_table.ts";
import type { RoutedCluster, Router } from "../routing/router.ts";
import { parseServerBoolean, type Target, targetAcceptsServer } from "../routing/target.ts";
import type { Pool } from "./pool.ts";
import { PoolRegistry } from "./pool_registry.ts";
import type { PoolMetricsSink } from "./pool_registry.ts";
import type { PoolSettings } from "./pool_schema.ts";
import { PoolError } from "./pool_error.ts";
import { noEligibleHost } from "../core/routing_errors.ts";

export interface SessionPoolsOptions {
  /** The router in force now (a reload swaps it). */
  readonly router: () => Router;
  readonly connect: Connector;
  readonly connectTimeoutMs: () => number;
  readonly loginTimeoutMs: () => number;
  readonly maxMessageBytes: () => number;
  readonly upstreamTls: () => UpstreamTlsSettings | undefined;
  readonly requireAuth: () => readonly UpstreamAuthMethod[] | undefined;
  readonly maxServerConnections?: number | undefined;
  readonly metrics: MetricsSink;
  readonly poolMetrics?: PoolMetricsSink | undefined;
  readonly logger: Logger;
}

/** A server's login failed in a way that says nothing about the host (the server refused the role). */
class LoginRefused extends Error {
  readonly error: ClientError;
  constructor(error: ClientError) {
    super(error.message);
    this.error = error;
  }
}

export class SessionPools implements Pools {
  readonly registry: PoolRegistry<ServerConnection>;
  readonly #options: SessionPoolsOptions;
  /** The last ClientKey each user proved: what pgrelay logs in with for that user. */
  readonly #logins = new Map<string, ClientLogin>();
  /** The placement of each pool's connections (route, cluster, target, host). */
  readonly #placements = new Map<Pool<ServerConnection>, { route: string; cluster: RoutedCluster; target: Target; host: HostState }>();

  constructor(options: SessionPoolsOptions) {
    this.#options = options;
    this.registry = new PoolRegistry<ServerConnection>({
      factory: (key) => ({
        open: () => this.#login(key.cluster, key.host, key.database, key.user, key.route),
        close: (server) => server.destroy(),
      }),
      maxServerConnections: options.maxServerConnections,
      ...(options.poolMetrics ? { metrics: options.poolMetrics } : {}),
    });
  }

  poolFor(facts: RouteFacts, client: { user: string; database: string; login: ClientLogin }): PooledRoute | undefined {
    const router = this.#options.router();
    const routed = router.route(facts);
    const settings = routed?.choice.route.pool;
    if (!routed || !settings) return undefined;
    this.#logins.set(client.user, client.login);
    const { choice, cluster } = routed;
    const route = choice.route.label;
    return {
      route,
      mode: settings.mode,
      resetQuery: settings.resetQuery ?? "",
      onPin: settings.onPin,
      lease: (abandoned) => this.#lease(router, cluster, choice.target, route, settings, client, abandoned),
      release: (server, reusable) => this.#release(server, reusable),
      pinned: (server, reason) => leases.get(server)?.pin(server, reason),
    };
  }

  /** Chooses a host for the target (connect retry, hold) and leases from that host's pool. */
  async #lease(
    router: Router,
    cluster: RoutedCluster,
    target: Target,
    route: string,
    settings: PoolSettings,
    client: { user: string; database: string },
    abandoned: () => boolean,
  ): Promise<ServerConnection> {
    const checker = cluster.checker;
    let refused: ClientError | undefined;
    const acquired = await acquire(cluster.cluster, target, {
      connect: async (host) => {
        const pool = this.registry.pool({ route, cluster: cluster.settings.name, host: host.address, database: client.database, user: client.user }, settings);
        this.#placements.set(pool, { route, cluster, target, host });
        for (;;) {
          if (abandoned()) throw new PoolError(SQLSTATE.CONNECTION_FAILURE, "the client left");
          const server = pool.tryLease() ?? await pool.lease();
          // A connection that closed while idle is dropped, and another is lent.
          if (server.open) return { pool, server };
          pool.release(server, { reusable: false });
        }
      },
      isHostFailure: (error) => {
        if (error instanceof LoginRefused) {
          refused = error.error;
          return false;
        }
        return !(error instanceof ClientError);
      },
      holdMs: router.holdMs,
      ...(checker ? { nextChange: (ms: number) => checker.nextChange(ms) } : {}),
      report: (host, change) => checker?.report(host, change),
    }).catch((error) => {
      if (error instanceof LoginRefused) throw error.error;
      throw error;
    });
    if (refused) throw refused;
    if (!acquired.ok) {
      throw checker
        ? noEligibleHost("pool", cluster.settings.name, target)
        : new ClientError({
          severity: "FATAL",
          code: SQLSTATE.CONNECTION_FAILURE,
          message: "pgrelay could not connect to upstream",
          hint: `The server did not accept pgrelay's connection: ${acquired.reason}`,
        });
    }
    const { pool, server } = acquired.connection;
    leases.set(server, pool);
    return server;
  }

  #release(server: ServerConnection, reusable: boolean): void {
    const pool = leases.get(server);
    if (!pool) {
      server.destroy();
      return;
    }
    leases.delete(server);
    const keep = reusable && server.open;
    if (keep) parkServer(server);
    pool.release(server, { reusable: keep });
  }

  /**
   * Opens and logs in one pooled server connection to `hostAddress` for `user` on `database`: SCRAM with the
   * last ClientKey that user proved, then the server's parameters and key read up to its ReadyForQuery.
   */
  async #login(clusterName: string, hostAddress: string, database: string, user: string, route: string): Promise<ServerConnection> {
    const options = this.#options;
    const router = options.router();
    const cluster = router.clusters.get(clusterName);
    const host = cluster?.cluster.hosts.find((candidate) => candidate.address === hostAddress);
    const login = this.#logins.get(user);
    if (!cluster || !host || !login) throw new Error(`pool for ${user}@${hostAddress}/${database} has no route or login any more`);
    const placement = [...this.#placements.entries()].find(([, p]) => p.host === host && p.route === route)?.[1] ??
      { route, cluster, target: "any" as Target, host };
    const server = await openServerTo(host, placement, {
      router,
      connect: options.connect,
      connectTimeoutMs: options.connectTimeoutMs(),
      upstreamTls: options.upstreamTls(),
      metrics: options.metrics,
      logger: options.logger,
    });
    const timeoutMs = options.loginTimeoutMs();
    try {
      const result = await loginUpstream(server.socket, startupMessage({ user, database }), login, {
        user,
        timeoutMs,
        maxBodyBytes: 65536,
        requireAuth: options.requireAuth(),
      });
      if (!result.ok) {
        const fields = decodeFields(result.frame);
        throw new LoginRefused(new ClientError({
          severity: "FATAL",
          code: (fields.get("C") ?? SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION) as ClientError["code"],
          message: fields.get("M") ?? "the server refused pgrelay's login",
        }));
      }
      observeServer(server, options.maxMessageBytes());
      const refused = await exchange(server, { initial: result.rest, timeoutMs });
      if (refused) {
        throw new LoginRefused(new ClientError({
          severity: "FATAL",
          code: (refused.get("C") ?? SQLSTATE.CONNECTION_FAILURE) as ClientError["code"],
          message: refused.get("M") ?? "the server refused pgrelay's login",
        }));
      }
      const accepts = targetAcceptsServer(placement.target, {
        inHotStandby: parseServerBoolean(server.facts.parameters.get("in_hot_standby")),
        defaultTransactionReadOnly: parseServerBoolean(server.facts.parameters.get("default_transaction_read_only")),
      });
      if (accepts === false) throw new Error(`its role no longer suits target ${placement.target} (stale health check)`);
      parkServer(server);
      return server;
    } catch (error) {
      server.destroy();
      if (error instanceof ClientError) throw new LoginRefused(error);
      throw error;
    }
  }
}

/** Which pool lent each server connection now. */
const leases = new WeakMap<ServerConnection, Pool<ServerConnection>>();

/** The fields of an ErrorResponse frame (type and length included). */
const decodeFields = (frame: Uint8Array) => decodeErrorFields(frame.subarray(5));
