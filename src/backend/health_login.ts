/**
 * The health check's probe over a real connection: connect to the host, apply the cluster's upstream TLS,
 * log in as `health.user` (its password from auth.file, the way auth.query logs in as auth.user), run
 * HEALTH_QUERY and read its row (src/routing/health_probe.ts). The probe gives up when its signal aborts
 * (the check's timeout): the connection is destroyed, so a host that stopped answering fails the check.
 */
import { BACKEND } from "../protocol/codes.ts";
import { decodeErrorFields } from "../protocol/error_response.ts";
import { bind, execute, parse, startupMessage, sync, terminate } from "../protocol/frontend_messages.ts";
import type { HealthSettings } from "../routing/cluster_schema.ts";
import type { Probe } from "../routing/health_checker.ts";
import { HEALTH_QUERY, parseHealthRow } from "../routing/health_probe.ts";
import type { HealthCheckResult } from "../routing/host_state.ts";
import { hostAddress, type RoutedCluster } from "../routing/router.ts";
import { logIn } from "./auth_query.ts";
import { MessageReader } from "../core/message_reader.ts";
import type { Connector, RelaySocket } from "../core/socket.ts";
import { NO_UPSTREAM_TLS, tlsForHost, type UpstreamTlsSettings } from "../core/tls_settings.ts";
import { secureUpstream } from "./upstream_tls.ts";
import type { UpstreamAuthMethod } from "./upstream_auth.ts";

const decoder = new TextDecoder();

/** The text values of a DataRow (null for SQL NULL). */
function dataRowValues(body: Uint8Array): (string | null)[] {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const count = view.getInt16(0);
  const values: (string | null)[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    const length = view.getInt32(at);
    at += 4;
    if (length < 0) values.push(null);
    else {
      values.push(decoder.decode(body.subarray(at, at + length)));
      at += length;
    }
  }
  return values;
}

/** Logs in on `server` and runs the health query; closes the connection either way. */
export async function runHealthQuery(
  server: RelaySocket,
  login: { user: string; password: string; database: string; requireAuth?: readonly UpstreamAuthMethod[] | undefined },
  timeoutMs: number,
): Promise<HealthCheckResult> {
  const reader = new MessageReader(server, { maxBodyBytes: 1 << 20, peer: "server" });
  const next = () => reader.next(timeoutMs);
  try {
    server.write(startupMessage({ user: login.user, database: login.database, application_name: "pgrelay health check" }));
    await logIn(server, { query: HEALTH_QUERY, ...login }, next, "health.user");
    server.write(new Uint8Array([...parse(HEALTH_QUERY), ...bind([]), ...execute(), ...sync()]));
    let row: (string | null)[] | undefined;
    let error: Error | undefined;
    for (let message = await next(); message.type !== BACKEND.READY_FOR_QUERY; message = await next()) {
      if (message.type === BACKEND.ERROR_RESPONSE) {
        const fields = decodeErrorFields(message.body);
        error = new Error(`health query failed: ${fields.get("C") ?? "?"} ${fields.get("M") ?? "(no message)"}`);
      }
      if (message.type === BACKEND.DATA_ROW && row === undefined) row = dataRowValues(message.body);
    }
    if (error) throw error;
    if (!row) throw new Error("health query returned no row");
    return parseHealthRow(row);
  } finally {
    server.write(terminate());
    server.end();
  }
}

/**
 * The probe of a cluster's hosts. `passwords` maps health.user to its password; `defaultTls` is
 * upstream_tls, used when the cluster has no `tls:` of its own.
 */
export function healthProbe(
  connect: Connector,
  routed: RoutedCluster,
  health: HealthSettings,
  options: {
    passwords: ReadonlyMap<string, string>;
    defaultTls: UpstreamTlsSettings | undefined;
    requireAuth?: readonly UpstreamAuthMethod[] | undefined;
  },
): Probe {
  return async (host, signal) => {
    const password = options.passwords.get(health.user);
    if (password === undefined) throw new Error(`health.user "${health.user}" has no plaintext password in auth.file`);
    const address = hostAddress(host.address);
    const tls = tlsForHost(routed.tls ?? options.defaultTls ?? NO_UPSTREAM_TLS, address.hostname);
    const plain = await connect(address, { timeoutMs: health.timeoutMs });
    let current: RelaySocket = plain;
    const abort = () => current.destroy();
    signal.addEventListener("abort", abort, { once: true });
    try {
      if (signal.aborted) throw new Error("health check timed out");
      current = await secureUpstream(plain, tls, health.timeoutMs);
      return await runHealthQuery(current, {
        user: health.user,
        password,
        database: health.database,
        requireAuth: options.requireAuth,
      }, health.timeoutMs);
    } catch (error) {
      current.destroy();
      plain.destroy();
      throw error;
    } finally {
      signal.removeEventListener("abort", abort);
    }
  };
}
