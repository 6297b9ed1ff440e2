/**
 * auth.query: when a user is not in auth.file, pgrelay logs in to the server as `auth.user` (its password
 * comes from auth.file, PgBouncer's convention) and runs `auth.query` with the user name as $1 to fetch the
 * user's SCRAM verifier, e.g. `SELECT rolpassword FROM pg_authid WHERE rolname = $1` through a SECURITY
 * DEFINER function. The name travels as a bound parameter, never spliced into SQL.
 */
import { ScramClientWithPassword } from "../auth/scram_client_with_password.ts";
import { decodeAuthentication, saslInitialResponse, saslResponse } from "../protocol/auth_messages.ts";
import { AUTH, BACKEND } from "../protocol/codes.ts";
import { decodeErrorFields } from "../protocol/error_response.ts";
import { bind, execute, parse, passwordMessage, startupMessage, sync, terminate } from "../protocol/frontend_messages.ts";
import { MessageReader } from "./message_reader.ts";
import type { RelaySocket } from "./socket.ts";

export interface AuthQuerySettings {
  query: string;
  /** The role pgrelay logs in as to run the query. */
  user: string;
  /** Its password (SCRAM, cleartext or trust on the server; md5 cannot be answered without MD5). */
  password: string;
  database: string;
}

const decoder = new TextDecoder();

function serverError(body: Uint8Array, what: string): Error {
  const fields = decodeErrorFields(body);
  return new Error(`${what}: ${fields.get("C") ?? "?"} ${fields.get("M") ?? "(no message)"}`);
}

/** The first column of the first row `auth.query` returns for `user`, or undefined for no row or NULL. */
export async function fetchVerifier(
  server: RelaySocket,
  settings: AuthQuerySettings,
  user: string,
  options: { timeoutMs: number },
): Promise<string | undefined> {
  const reader = new MessageReader(server, { maxBodyBytes: 1 << 20, peer: "server" });
  const next = () => reader.next(options.timeoutMs);
  try {
    server.write(startupMessage({ user: settings.user, database: settings.database, application_name: "pgrelay auth_query" }));
    let scram: ScramClientWithPassword | undefined;
    for (let message = await next(); message.type !== BACKEND.READY_FOR_QUERY; message = await next()) {
      if (message.type === BACKEND.ERROR_RESPONSE) throw serverError(message.body, `auth.user "${settings.user}" could not log in`);
      if (message.type !== BACKEND.AUTHENTICATION) continue; // ParameterStatus, BackendKeyData, notices
      const { code, data } = decodeAuthentication(message.body);
      if (code === AUTH.CLEARTEXT_PASSWORD) server.write(passwordMessage(settings.password));
      else if (code === AUTH.SASL) {
        scram = new ScramClientWithPassword(settings.password);
        const initial = scram.initialResponse();
        server.write(saslInitialResponse(initial.mechanism, initial.data));
      } else if (code === AUTH.SASL_CONTINUE && scram) server.write(saslResponse(await scram.handleContinue(data)));
      else if (code === AUTH.SASL_FINAL && scram) await scram.handleFinal(data);
      else if (code !== AUTH.OK) {
        throw new Error(`the server asks auth.user "${settings.user}" for authentication type ${code}; use SCRAM-SHA-256 or password`);
      }
    }
    server.write(new Uint8Array([...parse(settings.query), ...bind([user]), ...execute(), ...sync()]));
    let value: string | undefined;
    let error: Error | undefined;
    for (let message = await next(); message.type !== BACKEND.READY_FOR_QUERY; message = await next()) {
      if (message.type === BACKEND.ERROR_RESPONSE) error = serverError(message.body, "auth.query failed");
      if (message.type === BACKEND.DATA_ROW && value === undefined) {
        const view = new DataView(message.body.buffer, message.body.byteOffset, message.body.byteLength);
        const length = view.getInt16(0) > 0 ? view.getInt32(2) : -1;
        if (length >= 0) value = decoder.decode(message.body.subarray(6, 6 + length));
      }
    }
    if (error) throw error;
    return value;
  } finally {
    server.write(terminate());
    server.end();
  }
}
