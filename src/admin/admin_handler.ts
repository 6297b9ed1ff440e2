/**
 * The admin HTTP endpoints, as a web-standard `Request -> Response` handler that both runtimes serve:
 * `/metrics` (Prometheus text), `/healthz` (the process answers), `/readyz` (listening, not draining, and
 * the upstream accepts TCP connections; 503 with the reason otherwise).
 */
import type { Proxy } from "../core/proxy.ts";
import { formatAddress } from "../core/session.ts";
import type { ProxyMetrics } from "../metrics/proxy_metrics.ts";

export interface AdminOptions {
  proxy: Proxy;
  metrics: ProxyMetrics;
  /** The admission gate, whose connection-limit slots `/metrics` shows. */
  admission?: { slotsInUse(): Readonly<Record<string, number>> } | undefined;
  /** How long an upstream probe may take. */
  probeTimeoutMs?: number;
  /** Probe results younger than this are reused, so scrapes never storm the upstream. */
  probeCacheMs?: number;
}

type Probe = { ok: true } | { ok: false; reason: string };

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

  const text = (status: number, body: string, contentType = "text/plain; charset=utf-8") =>
    new Response(body, { status, headers: { "content-type": contentType, "cache-control": "no-store" } });

  return async (request) => {
    const path = new URL(request.url).pathname;
    if (request.method !== "GET" && request.method !== "HEAD") return text(405, "method not allowed: use GET\n");
    switch (path) {
      case "/healthz":
        return text(200, "ok\n");
      case "/readyz": {
        if (proxy.draining) return text(503, "not ready: draining, no new sessions accepted\n");
        const result = await probe();
        if (!result.ok) return text(503, `not ready: upstream ${formatAddress(proxy.upstream)} unreachable: ${result.reason}\n`);
        return text(200, `ready: listening on ${formatAddress(proxy.address)}, upstream ${formatAddress(proxy.upstream)} reachable\n`);
      }
      case "/metrics": {
        const result = await probe();
        const body = metrics.render({
          sessions: proxy.sessions,
          bufferedBytes: proxy.bufferedBytes,
          upstreamUp: result.ok ? 1 : 0,
          draining: proxy.draining,
          limitSlots: options.admission?.slotsInUse(),
        });
        return text(200, body, "text/plain; version=0.0.4; charset=utf-8");
      }
      default:
        return text(404, "not found: try /metrics, /healthz or /readyz\n");
    }
  };
}
