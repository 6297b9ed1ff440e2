/** How each leg of a session is encrypted; the config builds these, the session follows them. */
import type { ClientTlsOptions, ServerTlsOptions } from "./socket.ts";

export type ClientTlsMode = "disable" | "terminate" | "passthrough";
export type UpstreamTlsMode = "disable" | "prefer" | "require" | "verify-ca" | "verify-full";

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
  return { mode: tls.mode, client: { ...tls.client, serverName: hostname } };
}
