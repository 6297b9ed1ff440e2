/**
 * Message codes of the PostgreSQL frontend/backend protocol, one table per direction because the same
 * letter means different things each way.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** `int32 code` of the untyped packets a client may send before StartupMessage. */
export const STARTUP_CODE = {
  PROTOCOL_3_0: 196608, // 3 << 16
  CANCEL_REQUEST: 80877102, // 1234 << 16 | 5678
  SSL_REQUEST: 80877103, // 1234 << 16 | 5679
  GSSENC_REQUEST: 80877104, // 1234 << 16 | 5680
} as const;

const c = (letter: string): number => letter.charCodeAt(0);

/** Typed messages sent by the client (frontend). */
export const FRONTEND = {
  BIND: c("B"),
  CLOSE: c("C"),
  COPY_DATA: c("d"),
  COPY_DONE: c("c"),
  COPY_FAIL: c("f"),
  DESCRIBE: c("D"),
  EXECUTE: c("E"),
  FLUSH: c("H"),
  FUNCTION_CALL: c("F"),
  PARSE: c("P"),
  PASSWORD: c("p"), // also SASLInitialResponse / SASLResponse / GSSResponse
  QUERY: c("Q"),
  SYNC: c("S"),
  TERMINATE: c("X"),
} as const;

/** Typed messages sent by the server (backend). */
export const BACKEND = {
  AUTHENTICATION: c("R"),
  BACKEND_KEY_DATA: c("K"),
  BIND_COMPLETE: c("2"),
  CLOSE_COMPLETE: c("3"),
  COMMAND_COMPLETE: c("C"),
  COPY_BOTH_RESPONSE: c("W"),
  COPY_DATA: c("d"),
  COPY_DONE: c("c"),
  COPY_IN_RESPONSE: c("G"),
  COPY_OUT_RESPONSE: c("H"),
  DATA_ROW: c("D"),
  EMPTY_QUERY_RESPONSE: c("I"),
  ERROR_RESPONSE: c("E"),
  FUNCTION_CALL_RESPONSE: c("V"),
  NEGOTIATE_PROTOCOL_VERSION: c("v"),
  NO_DATA: c("n"),
  NOTICE_RESPONSE: c("N"),
  NOTIFICATION_RESPONSE: c("A"),
  PARAMETER_DESCRIPTION: c("t"),
  PARAMETER_STATUS: c("S"),
  PARSE_COMPLETE: c("1"),
  PORTAL_SUSPENDED: c("s"),
  READY_FOR_QUERY: c("Z"),
  ROW_DESCRIPTION: c("T"),
} as const;

/** Subtypes of the backend Authentication (`R`) message: its first int32. */
export const AUTH = {
  OK: 0,
  KERBEROS_V5: 2,
  CLEARTEXT_PASSWORD: 3,
  MD5_PASSWORD: 5,
  GSS: 7,
  GSS_CONTINUE: 8,
  SSPI: 9,
  SASL: 10,
  SASL_CONTINUE: 11,
  SASL_FINAL: 12,
} as const;

/** The status byte of ReadyForQuery (`Z`). */
export const TRANSACTION_STATUS = {
  IDLE: c("I"),
  IN_TRANSACTION: c("T"),
  FAILED: c("E"),
} as const;

export type TransactionStatus = "idle" | "in_transaction" | "failed" | "unknown";

/** Maps a ReadyForQuery status byte to a readable name. */
export function transactionStatusName(byte: number | undefined): TransactionStatus {
  switch (byte) {
    case TRANSACTION_STATUS.IDLE:
      return "idle";
    case TRANSACTION_STATUS.IN_TRANSACTION:
      return "in_transaction";
    case TRANSACTION_STATUS.FAILED:
      return "failed";
    default:
      return "unknown";
  }
}
