/**
 * Starts TLS toward the upstream the way libpq does: SSLRequest, a one-byte answer, then the handshake.
 * An answer longer than one byte is refused (CVE-2021-23222: bytes the server sent before the handshake
 * must not be read as part of the encrypted session).
 */
import { STARTUP_CODE } from "../protocol/codes.ts";
import type { RelaySocket } from "../core/socket.ts";
import type { UpstreamTlsSettings } from "../core/tls_settings.ts";

const SSL_REQUEST = new Uint8Array([0, 0, 0, 8, ...[24, 16, 8, 0].map((shift) => (STARTUP_CODE.SSL_REQUEST >>> shift) & 255)]);

/** Sends an SSLRequest and returns the server's answer byte (as a letter). */
export function requestTls(socket: RelaySocket, timeoutMs: number, packet: Uint8Array = SSL_REQUEST): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to SSLRequest within ${timeoutMs} ms`)), timeoutMs);
    socket.listen({
      data: (chunk) => {
        clearTimeout(timer);
        socket.pause();
        if (chunk.length !== 1) {
          reject(new Error(`the server sent ${chunk.length} bytes in answer to SSLRequest, expected 1 (refusing data before the TLS handshake)`));
          return;
        }
        resolve(String.fromCharCode(chunk[0]!));
      },
      drain() {},
      close: (error) => {
        clearTimeout(timer);
        reject(new Error(`the server closed the connection in answer to SSLRequest${error ? `: ${error.message}` : ""}`));
      },
    });
    socket.write(packet);
  });
}

/**
 * Applies `upstream_tls` to a freshly connected upstream socket: returns it encrypted, or unchanged where
 * the mode allows plaintext; throws an Error whose message says what failed.
 */
export async function secureUpstream(socket: RelaySocket, settings: UpstreamTlsSettings, timeoutMs: number): Promise<RelaySocket> {
  if (settings.mode === "disable") return socket;
  if (!socket.upgradeTls || !settings.client) throw new Error("this socket cannot start TLS (pgrelay bug: TLS modes use the node:tls adapter)");
  const answer = await requestTls(socket, timeoutMs);
  if (answer === "N") {
    if (settings.mode === "prefer") {
      socket.resume();
      return socket;
    }
    throw new Error(`the server does not accept TLS (it answered N to SSLRequest) but upstream_tls.mode is ${settings.mode}`);
  }
  if (answer !== "S") throw new Error(`the server answered SSLRequest with ${JSON.stringify(answer)}, expected S or N`);
  return await socket.upgradeTls({ role: "client", client: settings.client });
}
