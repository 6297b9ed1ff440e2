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
import { type Message, MessageReader } from "../core/message_reader.ts";
import { DEFAULT_UPSTREAM_REQUIRE_AUTH, requirementFailed, type UpstreamAuthMethod } from "./upstream_auth.ts";
import type { RelaySocket } from "../core/socket.ts";

export interface AuthQuerySettings {
  query: string;
  /** The role pgrelay logs in as to run the query. */
  user: string;
  /** Its password (SCRAM, cleartext or trust on the server; md5 cannot be answered without MD5). */
  password: string;
  database: string;
  /**
   * auth.upstream_require_auth: the requests pgrelay answers as `user`; default SCRAM-SHA-256 only, so the
   * password never leaves pgrelay in cleartext and the server must prove with its SCRAM signature that it
   * knows the password, unless `password` (cleartext) or `none` (trust) are listed.
   */
  requireAuth?: readonly UpstreamAuthMethod[] | undefined;
}

const decoder = new TextDecoder();

function serverError(body: Uint8Array, what: string): Error {
  const fields = decodeErrorFields(body);
  return new Error(`${what}: ${fields.get("C") ?? "?"} ${fields.get("M") ?? "(no message)"}`);
}

/**
 * Logs in as auth.user (or health.user: `role` names it in errors), through ReadyForQuery. AuthenticationOk counts only after a SCRAM exchange whose
 * server signature verified, after a cleartext password when `password` is allowed, or at once when
 * `none` is; anything else throws (with libpq's require_auth wording) before the password is sent.
 */
export async function logIn(
  server: RelaySocket,
  settings: AuthQuerySettings,
  next: () => Promise<Message>,
  role = "auth.user",
): Promise<void> {
  const allowed = settings.requireAuth ?? DEFAULT_UPSTREAM_REQUIRE_AUTH;
  const refuse = (reason: string) => new Error(`${role} "${settings.user}": ${requirementFailed(allowed, reason)}`);
  let scram: ScramClientWithPassword | undefined;
  let sentPassword = false;
  let authenticated = false;
  for (let message = await next(); message.type !== BACKEND.READY_FOR_QUERY; message = await next()) {
    if (message.type === BACKEND.ERROR_RESPONSE) throw serverError(message.body, `${role} "${settings.user}" could not log in`);
    if (message.type !== BACKEND.AUTHENTICATION) continue; // ParameterStatus, BackendKeyData, notices
    if (authenticated) throw new Error(`${role} "${settings.user}": the server asked for authentication after AuthenticationOk`);
    const { code, data } = decodeAuthentication(message.body);
    switch (code) {
      case AUTH.OK:
        if (scram && !scram.verified) {
          throw new Error(`${role} "${settings.user}": the server sent AuthenticationOk before completing SCRAM authentication (no valid server signature)`);
        }
        if (!scram && !sentPassword && !allowed.includes("none")) throw refuse("server did not complete authentication");
        authenticated = true;
        break;
      case AUTH.CLEARTEXT_PASSWORD:
        if (!allowed.includes("password")) throw refuse("server requested a cleartext password");
        if (scram || sentPassword) throw new Error(`${role} "${settings.user}": the server asked for a password twice`);
        sentPassword = true;
        server.write(passwordMessage(settings.password));
        break;
      case AUTH.MD5_PASSWORD:
        throw refuse("server requested a hashed password (md5, which pgrelay never answers)");
      case AUTH.SASL: {
        if (!allowed.includes("scram-sha-256")) throw refuse("server requested SASL authentication");
        if (scram || sentPassword) throw new Error(`${role} "${settings.user}": the server started a second authentication exchange`);
        const offered = decoder.decode(data).split("\0");
        if (!offered.includes("SCRAM-SHA-256")) throw new Error(`${role} "${settings.user}": the server offers ${offered.filter(Boolean).join(", ")}, and pgrelay logs in with SCRAM-SHA-256`);
        scram = new ScramClientWithPassword(settings.password);
        const initial = scram.initialResponse();
        server.write(saslInitialResponse(initial.mechanism, initial.data));
        break;
      }
      case AUTH.SASL_CONTINUE:
        if (!scram) throw new Error(`${role} "${settings.user}": the server continued a SASL exchange that was not started`);
        server.write(saslResponse(await scram.handleContinue(data)));
        break;
      case AUTH.SASL_FINAL:
        if (!scram) throw new Error(`${role} "${settings.user}": the server finished a SASL exchange that was not started`);
        try {
          await scram.handleFinal(data);
        } catch (error) {
          throw new Error(`${role} "${settings.user}": pgrelay could not verify the server: ${(error as Error).message}`);
        }
        break;
      default:
        throw new Error(`the server asks ${role} "${settings.user}" for authentication type ${code}; use SCRAM-SHA-256`);
    }
  }
  if (!authenticated) throw new Error(`${role} "${settings.user}": the server sent ReadyForQuery before AuthenticationOk`);
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
    await logIn(server, settings, next);
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
