/** How each leg of a session is encrypted; the config builds these, the session follows them. */
import type { ClientTlsOptions, ServerTlsOptions } from "./socket.ts";

export type ClientTlsMode = "disable" | "terminate" | "passthrough";
export type UpstreamTlsMode = "disable" | "prefer" | "require" | "verify-ca" | "verify-full";
/**
 * How the upstream TLS handshake starts, in libpq's words (`sslnegotiation`): `postgres` sends an SSLRequest
 * and waits for `S`; `direct` (PostgreSQL 17 and later) starts the TLS handshake at once, with ALPN "postgresql".
 */
export const UPSTREAM_TLS_NEGOTIATIONS = ["postgres", "direct"] as const;
export type UpstreamTlsNegotiation = typeof UPSTREAM_TLS_NEGOTIATIONS[number];

/** The modes `direct` negotiation allows: like libpq, never one that could fall back to plaintext. */
export const DIRECT_TLS_MODES = [
  "require",
  "verify-ca",
  "verify-full",
] as const satisfies readonly UpstreamTlsMode[];

/**
 * Why `negotiation` cannot go with `mode`, or undefined when it can. libpq refuses `sslnegotiation=direct`
 * with a weaker sslmode for the same reason: `prefer` could fall back to plaintext.
 */
export function negotiationProblem(
  mode: UpstreamTlsMode,
  negotiation: UpstreamTlsNegotiation,
): string | undefined {
  if (negotiation !== "direct" || (DIRECT_TLS_MODES as readonly string[]).includes(mode)) return undefined;
  return `negotiation direct needs mode ${
    DIRECT_TLS_MODES.join(", ").replace(/, ([^,]*)$/, " or $1")
  }, not ${mode} ` +
    "(direct TLS never falls back to plaintext)";
}

export interface ClientTlsSettings {
  mode: ClientTlsMode;
  /** Refuse clients that do not encrypt. */
  require: boolean;
  /** pgrelay's certificate and key (terminate). */
  server: ServerTlsOptions | undefined;
}

export interface UpstreamTlsSettings {
  mode: UpstreamTlsMode;
  /** How to check the server (all modes but disable). */
  client: ClientTlsOptions | undefined;
  /** How the handshake starts; absent: `postgres` (SSLRequest first). */
  negotiation?: UpstreamTlsNegotiation;
}

export const NO_CLIENT_TLS: ClientTlsSettings = { mode: "disable", require: false, server: undefined };
export const NO_UPSTREAM_TLS: UpstreamTlsSettings = { mode: "disable", client: undefined };

/** True when a session needs sockets that can start TLS (the node:tls adapter). */
export function needsTlsSockets(client: ClientTlsSettings, upstream: UpstreamTlsSettings): boolean {
  return client.mode !== "disable" || upstream.mode !== "disable";
}

/** The TLS settings for one host: an empty server name (the clusters' default) means the host's own name. */
export function tlsForHost(tls: UpstreamTlsSettings, hostname: string): UpstreamTlsSettings {
  if (!tls.client || tls.client.serverName !== "") return tls;
  return { ...tls, client: { ...tls.client, serverName: hostname } };
}
