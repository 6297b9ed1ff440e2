/**
 * Admin endpoints of the primary process under `--workers N`: asks each worker's own (loopback, ephemeral)
 * admin endpoint and combines the answers, so one scrape sees every worker.
 */
import { mergeWorkerMetrics } from "../metrics/merge_worker_metrics.ts";
import type { SocketAddress } from "../core/socket.ts";

export interface WorkerView {
  readonly id: number;
  /** The worker's own admin address, once it reported it. */
  readonly admin: SocketAddress | undefined;
  readonly alive: boolean;
}

export function createWorkersAdminHandler(workers: () => readonly WorkerView[], timeoutMs = 2000): (request: Request) => Promise<Response> {
  const ask = async (worker: WorkerView, path: string): Promise<{ status: number; body: string }> => {
    if (!worker.alive || !worker.admin) return { status: 503, body: `worker ${worker.id} is not running\n` };
    try {
      const response = await fetch(`http://${worker.admin.hostname}:${worker.admin.port}${path}`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: response.status, body: await response.text() };
    } catch (error) {
      return { status: 503, body: `worker ${worker.id} did not answer: ${(error as Error).message}\n` };
    }
  };
  const text = (status: number, body: string, contentType = "text/plain; charset=utf-8") =>
    new Response(body, { status, headers: { "content-type": contentType, "cache-control": "no-store" } });

  return async (request) => {
    const path = new URL(request.url).pathname;
    if (path !== "/healthz" && path !== "/readyz" && path !== "/metrics") {
      return text(404, "not found: try /metrics, /healthz or /readyz\n");
    }
    const list = workers();
    const answers = await Promise.all(list.map((worker) => ask(worker, path)));
    if (path === "/metrics") {
      const texts = answers.flatMap((answer, i) => answer.status === 200 ? [{ worker: list[i]!.id, text: answer.body }] : []);
      return text(200, mergeWorkerMetrics(texts), "text/plain; version=0.0.4; charset=utf-8");
    }
    const failing = answers.flatMap((answer, i) => answer.status === 200 ? [] : [`worker ${list[i]!.id}: ${answer.body.trim()}`]);
    if (failing.length > 0) return text(503, `not ready: ${failing.join("; ")}\n`);
    return text(200, path === "/healthz" ? "ok\n" : `ready: ${list.length} workers\n`);
  };
}
