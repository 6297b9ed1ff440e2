/**
 * `GET /` on the admin listener: the status page (status_page_html.ts). It is served without the admin token,
 * because a browser cannot send a bearer header when it navigates, and it is safe to: the document is the
 * same static bytes for everyone and holds no data; the data endpoints it reads still need the token.
 * Its Content-Security-Policy allows only its own inline script and style (by hash) and requests to its own
 * origin, so even a name that escaped the page's text-only rendering could not run script or load anything.
 */
import { STATUS_PAGE_HTML, STATUS_SCRIPT, STATUS_STYLE } from "./status_page_html.ts";

const encoder = new TextEncoder();

async function sha256Source(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  return `'sha256-${btoa(String.fromCharCode(...digest))}'`;
}

let policy: Promise<string> | undefined;

/** The page's Content-Security-Policy (computed once). */
export function statusPagePolicy(): Promise<string> {
  policy ??= Promise.all([sha256Source(STATUS_SCRIPT), sha256Source(STATUS_STYLE)]).then(([script, style]) =>
    [
      "default-src 'none'",
      `script-src ${script}`,
      `style-src ${style}`,
      "connect-src 'self'",
      "img-src data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; ")
  );
  return policy;
}

/** The status page response (HEAD: the same headers, no body). */
export async function statusPage(request: Request): Promise<Response> {
  return new Response(request.method === "HEAD" ? null : STATUS_PAGE_HTML, {
    status: 200,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": await statusPagePolicy(),
      "x-content-type-options": "nosniff",
      "x-frame-options": "DENY",
      "referrer-policy": "no-referrer",
    },
  });
}
