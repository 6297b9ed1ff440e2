import type { SocketAddress } from "./socket.ts";
import type { ScramAuthSettings } from "./scram_login.ts";
import type { ClientTlsSettings, UpstreamTlsSettings } from "./tls_settings.ts";
import type { Router } from "../routing/router.ts";

/** What a session needs to know to relay; a snapshot taken when the session starts. */
export interface RelaySettings {
  /** The `upstream:` address (without clusters, the one host sessions go to). */
  upstream: SocketAddress;
  /** Routes and clusters; absent: one unchecked cluster of `upstream` (with `upstreamEncryption`). */
  router?: Router;
  /** Time from accept until the server's first ReadyForQuery. */
  startupTimeoutMs: number;
  /** Time allowed to open the upstream TCP connection. */
  connectTimeoutMs: number;
  /** Largest message body accepted from either side. */
  maxMessageBytes: number;
  /** Client leg encryption (default: SSLRequest answered N). */
  clientEncryption?: ClientTlsSettings;
  /** Upstream leg encryption (default: plaintext). */
  upstreamEncryption?: UpstreamTlsSettings;
  /** Default relay: every auth message passes untouched. */
  authentication?: { mode: "relay" } | ScramAuthSettings;
  /** `max_server_connections`: pooled server connections to one host over every pool; absent: no cap. */
  maxServerConnections?: number | undefined;
  /** Bandwidth cap toward the client, bytes per second, per session; 0 or absent: none. */
  bandwidthPerSession?: number;
}
