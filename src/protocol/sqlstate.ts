/**
 * The SQLSTATE codes pgrelay itself sends. Errors from the server are relayed untouched and may carry any
 * code. https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
export const SQLSTATE = {
  FEATURE_NOT_SUPPORTED: "0A000",
  INVALID_PARAMETER_VALUE: "22023",
  SYNTAX_ERROR: "42601",
  CONNECTION_FAILURE: "08006",
  SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION: "08001",
  PROTOCOL_VIOLATION: "08P01",
  INVALID_AUTHORIZATION_SPECIFICATION: "28000",
  INVALID_PASSWORD: "28P01",
  TOO_MANY_CONNECTIONS: "53300",
  QUERY_CANCELED: "57014",
  ADMIN_SHUTDOWN: "57P01",
  CANNOT_CONNECT_NOW: "57P03",
  INTERNAL_ERROR: "XX000",
} as const;

export type SqlState = typeof SQLSTATE[keyof typeof SQLSTATE];
