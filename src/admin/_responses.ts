/** Response helpers shared by the admin handlers (private to src/admin). */

export function text(
  status: number,
  body: string,
  contentType = "text/plain; charset=utf-8",
  headers: Record<string, string> = {},
): Response {
  return new Response(body, {
    status,
    headers: { "content-type": contentType, "cache-control": "no-store", ...headers },
  });
}

export function json(status: number, value: unknown): Response {
  return text(status, JSON.stringify(value) + "\n", "application/json");
}

/** `/sessions/<id>/terminate` → the id (URL-decoded), else undefined. */
export function terminatePath(path: string): string | undefined {
  const match = /^\/sessions\/([^/]+)\/terminate$/.exec(path);
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
}

export const NOT_FOUND_TEXT =
  "not found: try / (status page), /metrics, /healthz, /readyz, /sessions, /clusters, /pools or POST /sessions/<id>/terminate\n";

/** 405 naming the methods `path` takes. */
export function wrongMethod(allowed: "GET" | "POST"): Response {
  return text(405, `method not allowed: use ${allowed}\n`, undefined, {
    allow: allowed === "GET" ? "GET, HEAD" : "POST",
  });
}
