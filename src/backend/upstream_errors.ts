/**
 * What a client is told when the database server fails it: the SQLSTATE and pgrelay's session id, never
 * the upstream's address, the operating system's error text or the server's own words from a connection
 * pgrelay made for itself. The operator finds the cause in the log, on the lines with the same session id.
 */
import { ClientError } from "../protocol/client_error.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";

export const SEE_LOG_HINT = "The administrator can find the cause in pgrelay's log under this session id.";

/** 08001: no connection to the server could be made (refused, timed out, TLS or login failed). */
export const upstreamUnreachable = (session: string): ClientError => new ClientError({
  severity: "FATAL",
  code: SQLSTATE.SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
  message: `pgrelay could not connect to the database server (session ${session})`,
  hint: SEE_LOG_HINT,
});

/** 08006: the server's connection closed or broke without a FATAL of the server's own. */
export const upstreamLost = (session: string): ClientError => new ClientError({
  severity: "FATAL",
  code: SQLSTATE.CONNECTION_FAILURE,
  message: `pgrelay lost the connection to the database server (session ${session})`,
  hint: SEE_LOG_HINT,
});

/** 08P01: the server sent bytes that are not a well-formed message. */
export const upstreamMalformed = (session: string): ClientError => new ClientError({
  severity: "FATAL",
  code: SQLSTATE.PROTOCOL_VIOLATION,
  message: `pgrelay received a malformed message from the database server (session ${session})`,
  hint: SEE_LOG_HINT,
});

/** XX000 or 08P01: pgrelay itself could not go on with the handshake; the cause goes to the log only. */
export const handshakeFailed = (session: string, code: ClientError["code"] = SQLSTATE.INTERNAL_ERROR): ClientError => new ClientError({
  severity: "FATAL",
  code,
  message: `pgrelay could not complete the connection (session ${session})`,
  hint: SEE_LOG_HINT,
});
