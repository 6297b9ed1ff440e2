/**
 * Admin endpoints of the primary process under `--workers N`: asks each worker's own (loopback, ephemeral)
 * admin endpoint and combines the answers, so one scrape sees every worker: /metrics gains a `worker`
 * label, /sessions and /pools are every worker's lists (each entry with its `worker`: each worker has its own
 * pools), /clusters is the first worker's
 * view of the upstream hosts (each worker checks them itself), and a terminate goes to the
 * worker whose number is in the session id. The caller's Authorization header is passed on, since the
 * workers check the same token.
 */
import { mergeWorkerMetrics } from "../metrics/merge_worker_metrics.ts";
import type { SocketAddress } from "../core/socket.ts";
import { json, NOT_FOUND_TEXT, terminatePath, text, wrongMethod } from "./_responses.ts";
import type { SessionView } from "./session_view.ts";
import type { PoolSnapshot } from "../pool/pool_registry.ts";
import { workerOfSessionId } from "./worker_session_id.ts";
import { statusPage } from "./status_page.ts";

export interface WorkerView {
  readonly id: number;
  /** The worker's own admin address, once it reported it. */
  readonly admin: SocketAddress | undefined;
  readonly alive: boolean;
}

interface Answer {
  status: number;
  body: string;
  contentType: string;
}

export function createWorkersAdminHandler(
  workers: () => readonly WorkerView[],
  timeoutMs = 2000,
): (request: Request) => Promise<Response> {
  const ask = async (worker: WorkerView, path: string, request: Request): Promise<Answer> => {
    const down = (body: string): Answer => ({ status: 503, body, contentType: "text/plain; charset=utf-8" });
    if (!worker.alive || !worker.admin) return down(`worker ${worker.id} is not running\n`);
    const authorization = request.headers.get("authorization");
    try {
      const response = await fetch(`http://${worker.admin.hostname}:${worker.admin.port}${path}`, {
        method: request.method === "POST" ? "POST" : "GET",
        headers: authorization === null ? {} : { authorization },
        signal: AbortSignal.timeout(timeoutMs),
      });
      return {
        status: response.status,
        body: await response.text(),
        contentType: response.headers.get("content-type") ?? "text/plain; charset=utf-8",
      };
    } catch (error) {
      return down(`worker ${worker.id} did not answer: ${(error as Error).message}\n`);
    }
  };

  return async (request) => {
    const path = new URL(request.url).pathname;
    const list = workers();
    const terminateId = terminatePath(path);
    if (terminateId !== undefined) {
      if (request.method !== "POST") return wrongMethod("POST");
      const owner = list.find((worker) => worker.id === workerOfSessionId(terminateId));
      if (!owner) return json(404, { error: `no live session with id ${JSON.stringify(terminateId)}` });
      const answer = await ask(owner, `/sessions/${encodeURIComponent(terminateId)}/terminate`, request);
      return text(answer.status, answer.body, answer.contentType);
    }
    if (request.method !== "GET" && request.method !== "HEAD") return wrongMethod("GET");
    if (path === "/") return await statusPage(request);
    if (path !== "/healthz" && path !== "/readyz" && path !== "/metrics" && path !== "/sessions" && path !== "/clusters" &&
      path !== "/pools"
    ) {
      return text(404, NOT_FOUND_TEXT);
    }
    const answers = await Promise.all(list.map((worker) => ask(worker, path, request)));
    // A worker refusing the token refuses it for everyone: pass its answer on.
    const refused = answers.find((answer) => answer.status === 401);
    if (refused && path !== "/healthz" && path !== "/readyz") {
      return text(401, refused.body, refused.contentType, { "www-authenticate": 'Bearer realm="pgrelay"' });
    }
    if (path === "/metrics") {
      const texts = answers.flatMap((answer, i) =>
        answer.status === 200 ? [{ worker: list[i]!.id, text: answer.body }] : []
      );
      return text(200, mergeWorkerMetrics(texts), "text/plain; version=0.0.4; charset=utf-8");
    }
    if (path === "/clusters") {
      // Every worker checks the same hosts on its own: the first worker's view that answered stands for all.
      const answered = answers.find((answer) => answer.status === 200);
      if (answered) return text(200, answered.body, answered.contentType);
      return json(503, { error: answers.map((answer, i) => `worker ${list[i]!.id}: ${answer.body.trim()}`).join("; ") });
    }
    if (path === "/sessions" || path === "/pools") {
      const field = path === "/sessions" ? "sessions" : "pools";
      const items: Array<SessionView | PoolSnapshot> = [];
      const errors: string[] = [];
      answers.forEach((answer, i) => {
        const worker = list[i]!.id;
        try {
          if (answer.status !== 200) throw new Error(answer.body.trim());
          const body = JSON.parse(answer.body) as Record<string, Array<SessionView | PoolSnapshot>>;
          for (const item of body[field] ?? []) items.push({ ...item, worker });
        } catch (error) {
          errors.push(`worker ${worker}: ${(error as Error).message}`);
        }
      });
      // The entries of the workers that answered, and why the others are missing.
      return json(200, errors.length > 0 ? { [field]: items, errors } : { [field]: items });
    }
    const failing = answers.flatMap((answer, i) =>
      answer.status === 200 ? [] : [`worker ${list[i]!.id}: ${answer.body.trim()}`]
    );
    if (failing.length > 0) return text(503, `not ready: ${failing.join("; ")}\n`);
    return text(200, path === "/healthz" ? "ok\n" : `ready: ${list.length} workers\n`);
  };
}
