/**
 * `admin.token_file`: every admin request must carry `Authorization: Bearer <token>`, except the static
 * status page `/` (PUBLIC_PATHS) and the probes `/healthz` and `/readyz`, which load balancers and
 * orchestrators call without credentials. Without the token those two answer only their status and a bare
 * word, never addresses or reasons.
 */
type Handler = (request: Request) => Promise<Response>;

/** Paths a request without the token may call (status only). */
export const OPEN_PATHS: readonly string[] = ["/healthz", "/readyz"];

/**
 * Paths served whole without the token: `/`, the status page, which is the same static document for
 * everyone (no data; its script fetches the data with the token the user gives it), since a browser cannot
 * send a bearer header when it navigates.
 */
export const PUBLIC_PATHS: readonly string[] = ["/"];

const encoder = new TextEncoder();

/**
 * Wraps `handler` so that it needs the token `token()` returns (read on each request, so a reload takes
 * effect at once); with no token configured, requests pass as they are.
 */
export function requireBearerToken(handler: Handler, token: () => string | undefined): Handler {
  return async (request) => {
    const expected = token();
    if (expected === undefined) return await handler(request);
    const path = new URL(request.url).pathname;
    if (PUBLIC_PATHS.includes(path) || await carriesToken(request, expected)) return await handler(request);
    if (OPEN_PATHS.includes(path)) {
      const response = await handler(request);
      const word = path === "/healthz" ? "ok" : response.ok ? "ready" : "not ready";
      return plain(response.status, `${word}\n`);
    }
    const presented = request.headers.has("authorization");
    return plain(
      401,
      presented ? "unauthorized: wrong bearer token\n" : "unauthorized: send Authorization: Bearer <token>\n",
      {
        "www-authenticate": presented
          ? 'Bearer realm="pgrelay", error="invalid_token"'
          : 'Bearer realm="pgrelay"',
      },
    );
  };
}

/** True when the request's Authorization header is `Bearer <expected>`, compared in constant time. */
export async function carriesToken(request: Request, expected: string): Promise<boolean> {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer +(\S+) *$/i.exec(header);
  // Compare digests, so neither the token's length nor the position of the first difference shows in the time.
  const [given, wanted] = await Promise.all([digest(match?.[1] ?? ""), digest(expected)]);
  let difference = match ? 0 : 1;
  for (let i = 0; i < wanted.length; i++) difference |= given[i]! ^ wanted[i]!;
  return difference === 0;
}

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

function plain(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers },
  });
}
