/**
 * `auth.mode: scram`: pgrelay runs SCRAM-SHA-256 with the client itself (SCRAM-SHA-256-PLUS bound to its
 * own certificate when it terminates the client's TLS), recovers the ClientKey from the client's proof,
 * and logs in to the server with that key, never knowing the password. Both sides use the same verifier,
 * so salt and iteration count match. https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import {
  lookupVerifier,
  pemToDer,
  ScramClientWithKey,
  ScramMock,
  ScramServerExchange,
  type ScramVerifier,
  tlsServerEndPointHash,
  type UserlistEntry,
} from "../auth/mod.ts";
import {
  authenticationSasl,
  authenticationSaslContinue,
  authenticationSaslFinal,
  decodeAuthentication,
  decodeSaslInitialResponse,
  saslInitialResponse,
  saslResponse,
} from "../protocol/auth_messages.ts";
import { AUTH, BACKEND, FRONTEND } from "../protocol/codes.ts";
import { encodeFrame } from "../protocol/encode_frame.ts";
import { ClientError } from "../protocol/client_error.ts";
import { SQLSTATE, type SqlState } from "../protocol/sqlstate.ts";
import { type Message, MessageReader } from "./message_reader.ts";
import { DEFAULT_UPSTREAM_REQUIRE_AUTH, requirementFailed, type UpstreamAuthMethod } from "../backend/upstream_auth.ts";
import type { RelaySocket } from "./socket.ts";

export interface ScramAuthSettings {
  mode: "scram";
  /** user -> SCRAM verifier (or another secret, refused with a clear error), from auth.file. */
  users: ReadonlyMap<string, string>;
  /** Fetches verifiers of users missing from `users` from the server. */
  query?: import("../backend/auth_query.ts").AuthQuerySettings;
  /** Mock verifiers for users pgrelay cannot authenticate; default: one secret per process. */
  mock?: ScramMock | undefined;
  /** auth.upstream_require_auth: what pgrelay answers when it logs in upstream; default SCRAM-SHA-256 only. */
  upstreamRequireAuth?: readonly UpstreamAuthMethod[] | undefined;
}

/** Used when the settings bring no {@link ScramMock}: its random secret is made once per process. */
const PROCESS_MOCK = new ScramMock();

/** Every entry of an auth file, classified and parsed once per loaded file (see {@link lookupUser}). */
const CLASSIFIED = new WeakMap<ReadonlyMap<string, string>, Map<string, UserlistEntry | RangeError>>();
const MISSING: UserlistEntry = { kind: "missing" };

function classified(users: ReadonlyMap<string, string>): Map<string, UserlistEntry | RangeError> {
  let entries = CLASSIFIED.get(users);
  if (entries) return entries;
  entries = new Map();
  for (const name of users.keys()) {
    try {
      entries.set(name, lookupVerifier(users, name));
    } catch (error) {
      entries.set(name, error as RangeError);
    }
  }
  CLASSIFIED.set(users, entries);
  return entries;
}

/**
 * Looks a user up in auth.file; `fallback` (auth.query) answers for users the file does not list. The file's
 * verifiers are parsed once, for all users, so a listed and an unlisted name cost the same: one map lookup.
 */
export async function lookupUser(
  users: ReadonlyMap<string, string>,
  user: string,
  fallback?: () => Promise<string | undefined>,
): Promise<UserlistEntry> {
  const found = classified(users).get(user) ?? MISSING;
  if (found instanceof RangeError) throw found;
  const entry = found;
  if (entry.kind !== "missing" || !fallback) return entry;
  const fetched = await fallback();
  return fetched === undefined ? entry : lookupVerifier(new Map([[user, fetched]]), user);
}

export interface ClientLogin {
  clientKey: Uint8Array;
  verifier: ScramVerifier;
}

const fatal = (code: SqlState, message: string, hint?: string): ClientError =>
  new ClientError({ severity: "FATAL", code, message, hint });

function expect(message: Message, type: number, what: string): void {
  if (message.type !== type) {
    throw fatal(SQLSTATE.PROTOCOL_VIOLATION, `expected ${what}, got message type '${String.fromCharCode(message.type)}'`);
  }
}

/**
 * A login that ended in a mock exchange: the client was answered as for a wrong password (`cause` is what
 * ended the exchange, usually the 28P01 ClientError it was sent), while `reason` says why pgrelay cannot
 * authenticate the user. `reason` is for the operator's log only: telling the client would reveal which
 * user names exist.
 */
export class MockedLoginFailed extends Error {
  readonly reason: ClientError;

  constructor(reason: ClientError, cause: unknown) {
    super(reason.message, { cause });
    this.name = "MockedLoginFailed";
    this.reason = reason;
  }
}

/** Why an auth-file entry cannot serve a SCRAM login, worded for the operator; undefined for a verifier. */
function unusableEntry(entry: UserlistEntry, user: string): ClientError | undefined {
  const fix = "List the user's SCRAM verifier (pg_authid.rolpassword) in pgrelay's auth.file, or use auth.mode: relay.";
  const refused = SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION;
  switch (entry.kind) {
    case "scram":
      return undefined;
    case "missing":
      return fatal(refused, `pgrelay has no SCRAM verifier for user "${user}"`, fix);
    case "md5":
      return fatal(
        refused,
        `user "${user}" has an md5 password in pgrelay's auth file; auth.mode scram needs a SCRAM-SHA-256 verifier`,
        "Set password_encryption = 'scram-sha-256', set the password again, and copy pg_authid.rolpassword into auth.file.",
      );
    case "plain":
      return fatal(refused, `user "${user}" has a plaintext password in pgrelay's auth file; auth.mode scram needs the SCRAM-SHA-256 verifier`, fix);
  }
}

/**
 * Authenticates the client against its verifier. Resolves with the ClientKey, or rejects with the
 * ClientError to send (28P01 for a wrong password). For a user without a usable verifier it runs a mock
 * exchange, as PostgreSQL does, and rejects with {@link MockedLoginFailed}: the client sees the same
 * messages as for a real user with a wrong password.
 */
export async function authenticateClient(
  client: RelaySocket,
  user: string,
  options: {
    lookup: () => Promise<UserlistEntry>;
    certificatePem: Uint8Array | undefined;
    timeoutMs: number;
    maxBodyBytes: number;
    onClose: (error?: Error) => void;
    mock?: ScramMock | undefined;
    /** True once the session ended or failed while the verifier was looked up: the exchange never starts. */
    abandoned?: () => boolean;
  },
): Promise<ClientLogin> {
  const entry = await options.lookup();
  // The mock verifier is made for every user, needed or not: a user pgrelay knows and one it does not must
  // cost the same crypto work before the first auth message, or the time to it tells which names exist.
  const mocked = await (options.mock ?? PROCESS_MOCK).verifier(user);
  const unusable = unusableEntry(entry, user);
  const verifier = entry.kind === "scram" ? entry.verifier : mocked;
  if (options.abandoned?.()) throw new Error("the session ended before the SCRAM exchange began");
  try {
    return { clientKey: await runExchange(client, user, verifier, unusable !== undefined, options), verifier };
  } catch (error) {
    throw unusable ? new MockedLoginFailed(unusable, error) : error;
  }
}

/** One SCRAM exchange with the client; `doomed` fails a well-formed proof as a wrong password. */
async function runExchange(
  client: RelaySocket,
  user: string,
  verifier: ScramVerifier,
  doomed: boolean,
  options: { certificatePem: Uint8Array | undefined; timeoutMs: number; maxBodyBytes: number; onClose: (error?: Error) => void },
): Promise<Uint8Array> {
  const pem = options.certificatePem;
  const exchange = new ScramServerExchange(verifier, {
    user,
    offerPlus: pem !== undefined,
    doomed,
    ...(pem ? { channelBinding: await tlsServerEndPointHash(pemToDer(new TextDecoder().decode(pem))) } : {}),
  });
  const reader = new MessageReader(client, { maxBodyBytes: options.maxBodyBytes, peer: "client", onClose: options.onClose });
  client.write(authenticationSasl(exchange.mechanisms()));
  const initial = await reader.next(options.timeoutMs);
  expect(initial, FRONTEND.PASSWORD, "SASLInitialResponse");
  const { mechanism, data } = decodeSaslInitialResponse(initial.body);
  const first = await exchange.handleInitial(mechanism, data);
  if ("error" in first) throw fatal(first.error.code as SqlState, first.error.message);
  client.write(authenticationSaslContinue(first.serverFirst));
  const response = await reader.next(options.timeoutMs);
  expect(response, FRONTEND.PASSWORD, "SASLResponse");
  const final = await exchange.handleFinal(response.body);
  if ("error" in final) throw fatal(final.error.code as SqlState, final.error.message);
  client.write(authenticationSaslFinal(final.serverFinal));
  return final.clientKey;
}

/** What happened when pgrelay logged in upstream. */
export type UpstreamLogin =
  /** Authenticated: `rest` starts with the server's AuthenticationOk; relay it to the client. */
  | { ok: true; rest: Uint8Array }
  /** The server refused: `frame` is its ErrorResponse, to relay as it is. */
  | { ok: false; frame: Uint8Array };

const frameOf = (message: Message) => encodeFrame(message.type, message.body);

/**
 * Sends the client's StartupMessage and answers the server's SCRAM exchange with the ClientKey. The server's
 * AuthenticationOk is believed only after its SASLFinal carried the ServerSignature the verifier's ServerKey
 * predicts (the verifier from auth.file or auth.query: the same one the server stores), so a server that
 * does not hold the verifier cannot pass for the real one; a server that asks for no authentication at all
 * is accepted only when `requireAuth` includes `none`. Those refusals are FATAL 08006.
 */
export async function loginUpstream(
  server: RelaySocket,
  startupPacket: Uint8Array,
  login: ClientLogin,
  options: { user: string; timeoutMs: number; maxBodyBytes: number; requireAuth?: readonly UpstreamAuthMethod[] | undefined },
): Promise<UpstreamLogin> {
  const requireAuth = options.requireAuth ?? DEFAULT_UPSTREAM_REQUIRE_AUTH;
  const unverified = (why: string) => fatal(SQLSTATE.CONNECTION_FAILURE, `pgrelay could not verify the server while logging in as "${options.user}": ${why}`);
  const reader = new MessageReader(server, { maxBodyBytes: options.maxBodyBytes, peer: "server" });
  server.write(startupPacket);
  let scram: ScramClientWithKey | undefined;
  const passOn: Uint8Array[] = []; // NegotiateProtocolVersion goes to the client before AuthenticationOk
  while (true) {
    const message = await reader.next(options.timeoutMs);
    if (message.type === BACKEND.ERROR_RESPONSE) return { ok: false, frame: frameOf(message) };
    if (message.type === BACKEND.NEGOTIATE_PROTOCOL_VERSION) {
      passOn.push(frameOf(message));
      continue;
    }
    expect(message, BACKEND.AUTHENTICATION, "an Authentication message from the server");
    const { code, data } = decodeAuthentication(message.body);
    switch (code) {
      case AUTH.OK: {
        if (scram && !scram.verified) {
          throw unverified("the server sent AuthenticationOk before completing SCRAM authentication (no valid server signature)");
        }
        if (!scram && !requireAuth.includes("none")) {
          throw unverified(requirementFailed(requireAuth, "server did not complete authentication"));
        }
        const rest = reader.release();
        const parts = [...passOn, frameOf(message), rest];
        const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const part of parts) {
          out.set(part, at);
          at += part.length;
        }
        return { ok: true, rest: out };
      }
      case AUTH.SASL: {
        if (scram) throw fatal(SQLSTATE.PROTOCOL_VIOLATION, "the server started a second SASL exchange");
        const offered = new TextDecoder().decode(data).split("\0");
        if (!offered.includes("SCRAM-SHA-256")) {
          throw fatal(SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION, `the server offers ${offered.filter(Boolean).join(", ")} for user "${options.user}", and pgrelay logs in with SCRAM-SHA-256`);
        }
        if (!requireAuth.includes("scram-sha-256")) {
          throw unverified(requirementFailed(requireAuth, "server requested SASL authentication"));
        }
        scram = new ScramClientWithKey({ clientKey: login.clientKey, verifier: login.verifier });
        const initial = scram.initialResponse();
        server.write(saslInitialResponse(initial.mechanism, initial.data));
        break;
      }
      case AUTH.SASL_CONTINUE:
        if (!scram) throw fatal(SQLSTATE.PROTOCOL_VIOLATION, "the server continued a SASL exchange that was not started");
        try {
          server.write(saslResponse(await scram.handleContinue(data)));
        } catch (error) {
          throw fatal(SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION, `pgrelay could not log in upstream as "${options.user}": ${(error as Error).message}`);
        }
        break;
      case AUTH.SASL_FINAL:
        if (!scram) throw fatal(SQLSTATE.PROTOCOL_VIOLATION, "the server finished a SASL exchange that was not started");
        try {
          await scram.handleFinal(data);
        } catch (error) {
          throw unverified((error as Error).message);
        }
        break;
      default:
        throw fatal(
          SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
          `the server asks for authentication type ${code} for user "${options.user}"; with auth.mode scram pgrelay logs in with SCRAM-SHA-256 only`,
          "Store the user's password as a SCRAM-SHA-256 verifier on the server (password_encryption = 'scram-sha-256').",
        );
    }
  }
}
