/**
 * Starts TLS toward the upstream the way libpq does. `negotiation: postgres` (libpq's default): SSLRequest, a
 * one-byte answer, then the handshake; an answer longer than one byte is refused (CVE-2021-23222: bytes the
 * server sent before the handshake must not be read as part of the encrypted session). `negotiation: direct`
 * (libpq 17 `sslnegotiation=direct`): the handshake at once, offering ALPN "postgresql", which the server
 * must select.
 */
import { STARTUP_CODE } from "../protocol/codes.ts";
import { type RelaySocket, TlsPeerClosedError, type TlsUpgrade } from "../core/socket.ts";
import type { UpstreamTlsSettings } from "../core/tls_settings.ts";

/** The ALPN protocol of PostgreSQL's direct TLS. */
export const POSTGRES_ALPN = "postgresql";
const ALPN_PROTOCOLS = [POSTGRES_ALPN];

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
  if (settings.negotiation === "direct") return await directTls(socket, settings, timeoutMs);
  const answer = await requestTls(socket, timeoutMs);
  if (answer === "N") {
    if (settings.mode === "prefer") {
      socket.resume();
      return socket;
    }
    throw new Error(`the server does not accept TLS (it answered N to SSLRequest) but upstream_tls.mode is ${settings.mode}`);
  }
  if (answer !== "S") throw new Error(`the server answered SSLRequest with ${JSON.stringify(answer)}, expected S or N`);
  return await handshake(socket, { role: "client", client: settings.client }, timeoutMs);
}

/**
 * Direct TLS. The modes that allow it never fall back to plaintext (config validation refuses `prefer`,
 * as libpq does), so every failure is the connection's failure.
 */
async function directTls(socket: RelaySocket, settings: UpstreamTlsSettings, timeoutMs: number): Promise<RelaySocket> {
  const client = { ...settings.client!, alpnProtocols: ALPN_PROTOCOLS };
  let secured: RelaySocket;
  try {
    secured = await handshake(socket, { role: "client", client }, timeoutMs);
  } catch (error) {
    if (!(error instanceof TlsPeerClosedError)) throw error;
    // PostgreSQL 16 and older read the ClientHello as a startup packet of absurd length and hang up.
    throw new Error(
      "the server closed the connection during the direct TLS handshake (negotiation: direct): " +
        "PostgreSQL before 17, and any server with ssl = off, does not accept direct TLS; " +
        "use negotiation: postgres (SSLRequest first) for this server",
    );
  }
  const alpn = secured.tls?.alpn;
  if (alpn !== POSTGRES_ALPN) {
    secured.destroy();
    throw new Error(
      `the server did not select ALPN "${POSTGRES_ALPN}" on a direct TLS connection (${alpn === undefined ? "it selected none" : `it selected ${JSON.stringify(alpn)}`}): not a PostgreSQL 17+ server`,
    );
  }
  return secured;
}

/** The TLS handshake, bounded by `timeoutMs`: a server that never finishes it has its connection destroyed. */
function handshake(socket: RelaySocket, upgrade: TlsUpgrade, timeoutMs: number): Promise<RelaySocket> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new Error(`the TLS handshake did not finish within ${timeoutMs} ms`));
      socket.destroy();
    }, timeoutMs);
    socket.upgradeTls!(upgrade).then((secured) => {
      clearTimeout(timer);
      if (late) secured.destroy();
      else resolve(secured);
    }, (error: unknown) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
