/**
 * The admin HTTP endpoints, as a web-standard `Request -> Response` handler that both runtimes serve:
 * `/` (the status page, status_page.ts), `/metrics` (Prometheus text), `/healthz` (the process answers), `/readyz` (listening, not draining, and
 * the upstream accepts TCP connections; 503 with the reason otherwise), `GET /sessions` (every live session
 * as JSON), `GET /clusters` (the upstream hosts' health), `GET /pools` (the connection pools) and
 * `POST /sessions/<id>/terminate` (ends one with FATAL 57P01). The bearer token, when
 * configured, is checked by requireBearerToken around this handler.
 */
import type { Proxy } from "../core/proxy.ts";
import { formatAddress } from "../frontend/frontend.ts";
import type { SessionContext } from "../core/session_context.ts";
import type { ProxyMetrics } from "../metrics/proxy_metrics.ts";
import type { PoolSnapshot } from "../pool/pool_registry.ts";
import { ClientError } from "../protocol/client_error.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";
import { json, NOT_FOUND_TEXT, terminatePath, text, wrongMethod } from "./_responses.ts";
import { sessionView } from "./session_view.ts";
import { statusPage } from "./status_page.ts";

export interface AdminOptions {
  proxy: Proxy;
  metrics: ProxyMetrics;
  /** The admission gate, whose connection-limit slots `/metrics` shows. */
  admission?: {
    slotsInUse(): Readonly<Record<string, number>>;
    slotCaps?(): Readonly<Record<string, number>>;
  } | undefined;
  /** When the certificates pgrelay loaded expire (the host reads them at start and on reload). */
  certificates?: () => readonly { certificate: string; notAfterSeconds: number }[];
  /** How long an upstream probe may take. */
  probeTimeoutMs?: number;
  /** Probe results younger than this are reused, so scrapes never storm the upstream. */
  probeCacheMs?: number;
  /** Told about each session ended through `POST /sessions/<id>/terminate` (the audit log's `terminated`). */
  onTerminated?: (context: SessionContext, error: ClientError) => void;
  /** The pool registry, for `GET /pools` and the pool gauges of `/metrics` (absent: no pooling, no pools). */
  pools?: { snapshot(): PoolSnapshot[] } | undefined;
}

type Probe = { ok: true } | { ok: false; reason: string };

/** What the client of a terminated session reads: PostgreSQL's own words for pg_terminate_backend. */
export const ADMIN_TERMINATION = new ClientError({
  severity: "FATAL",
  code: SQLSTATE.ADMIN_SHUTDOWN,
  message: "terminating connection due to administrator command",
  detail: "The session was ended through pgrelay's admin API.",
});

export function createAdminHandler(options: AdminOptions): (request: Request) => Promise<Response> {
  const { proxy, metrics } = options;
  const probeTimeoutMs = options.probeTimeoutMs ?? 1000;
  const probeCacheMs = options.probeCacheMs ?? 1000;
  let last: { at: number; result: Probe } | undefined;
  let pending: Promise<Probe> | undefined;

  const probe = async (): Promise<Probe> => {
    if (last && Date.now() - last.at < probeCacheMs) return last.result;
    pending ??= proxy.probeUpstream(probeTimeoutMs).then((result) => {
      last = { at: Date.now(), result };
      pending = undefined;
      return result;
    });
    return await pending;
  };

  /** Health checks watch the upstreams: readiness and up-ness come from them, not from a TCP probe. */
  const checked = () => [...proxy.router.clusters.values()].some((routed) => routed.settings.health !== undefined);

  return async (request) => {
    const path = new URL(request.url).pathname;
    const terminateId = terminatePath(path);
    if (terminateId !== undefined) {
      if (request.method !== "POST") return wrongMethod("POST");
      const context = proxy.terminate(terminateId, ADMIN_TERMINATION);
      if (!context) return json(404, { error: `no live session with id ${JSON.stringify(terminateId)}` });
      options.onTerminated?.(context, ADMIN_TERMINATION);
      return json(200, { terminated: terminateId, sqlstate: ADMIN_TERMINATION.code });
    }
    if (request.method !== "GET" && request.method !== "HEAD") return wrongMethod("GET");
    switch (path) {
      case "/":
        return await statusPage(request);
      case "/healthz":
        return text(200, "ok\n");
      case "/readyz": {
        if (proxy.draining) return text(503, "not ready: draining, no new sessions accepted\n");
        if (checked()) {
          const { ready, missing } = proxy.router.readiness();
          if (!ready) return text(503, `not ready: no eligible host for route ${missing.join(", ")}\n`);
          return text(200, `ready: listening on ${formatAddress(proxy.address)}, every route has an eligible host\n`);
        }
        const result = await probe();
        if (!result.ok) {
          return text(
            503,
            `not ready: upstream ${formatAddress(proxy.upstream)} unreachable: ${result.reason}\n`,
          );
        }
        return text(
          200,
          `ready: listening on ${formatAddress(proxy.address)}, upstream ${
            formatAddress(proxy.upstream)
          } reachable\n`,
        );
      }
      case "/clusters":
        return json(200, proxy.router.records());
      case "/pools":
        return json(200, { pools: options.pools?.snapshot() ?? [] });
      case "/metrics": {
        const result = checked() ? { ok: true } : await probe();
        const body = metrics.render({
          sessions: proxy.sessions,
          bufferedBytes: proxy.bufferedBytes,
          upstreamUp: result.ok ? 1 : 0,
          draining: proxy.draining,
          limitSlots: options.admission?.slotsInUse(),
          limitCaps: options.admission?.slotCaps?.(),
          certificates: options.certificates?.(),
          clusters: checked() ? proxy.router.records().clusters : undefined,
          pools: options.pools?.snapshot(),
          routes: checked() ? routeReadiness(proxy) : undefined,
        });
        return text(200, body, "text/plain; version=0.0.4; charset=utf-8");
      }
      case "/sessions":
        return json(200, {
          sessions: proxy.liveSessions.filter((s) => s.context.phase !== "closed").map(sessionView),
        });
      default:
        return text(404, NOT_FOUND_TEXT);
    }
  };
}

/** Each route and whether its cluster has a host eligible for its target now (as /readyz judges it). */
function routeReadiness(proxy: Proxy): { route: string; cluster: string; target: string; ready: boolean }[] {
  return proxy.router.table.rules.map((rule) => ({
    route: rule.label,
    cluster: rule.cluster,
    target: rule.target,
    ready: proxy.router.clusters.get(rule.cluster)?.cluster.hasCandidate(rule.target) ?? false,
  }));
}
