/**
 * `on_pin: error`: a statement that would pin a client to its server in transaction mode is sent as one that
 * fails with SQLSTATE 0A000 instead (a DO block raising it). The server then answers in step with all the
 * client sent (the ErrorResponse, a skip to the next Sync), and pgrelay keeps no bookkeeping of its own.
 */
import { FRONTEND } from "../protocol/codes.ts";
import { encodeFrame } from "../protocol/encode_frame.ts";
import { PIN_REASONS, type PinReason } from "../pool/pin_reasons.ts";

const encoder = new TextEncoder();

/** The DO statement that raises the refusal for `reason`. */
function refusalSql(reason: PinReason): string {
  const message = `${PIN_REASONS[reason].statement} cannot be used in transaction pooling mode`;
  const hint = "Use a route with pool mode session, or set on_pin: pin.";
  const quote = (text: string) => `'${text.replaceAll("'", "''")}'`;
  return `DO $pgrelay$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = ${quote(message)}, DETAIL = ${
    quote(`The state it creates would stay in one server connection (pin reason "${reason}").`)
  }, HINT = ${quote(hint)}; END$pgrelay$`;
}

/** The frame (Query, or Parse of the same statement name) to send instead, and its body. */
export function pinRefusal(type: number, body: Uint8Array, reason: PinReason): { frame: Uint8Array; body: Uint8Array } {
  const sql = encoder.encode(`${refusalSql(reason)}\0`);
  if (type === FRONTEND.QUERY) {
    return { frame: encodeFrame(FRONTEND.QUERY, sql), body: sql };
  }
  const nameEnd = body.indexOf(0);
  const name = body.subarray(0, nameEnd + 1);
  const parse = new Uint8Array(name.length + sql.length + 2);
  parse.set(name);
  parse.set(sql, name.length);
  return { frame: encodeFrame(FRONTEND.PARSE, parse), body: parse };
}
