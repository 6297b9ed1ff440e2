/**
 * Bind (`B`, frontend): `String portal, String statement, Int16 n + Int16 × n parameter formats,
 * Int16 n + (Int32 length, bytes) × n parameters, Int16 n + Int16 × n result formats`.
 * pgrelay only ever reads or rewrites the two names at its head, so a Bind whose parameters are large can be
 * rewritten by replacing its head and streaming the rest.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BIND
 */
import { FRONTEND } from "./codes.ts";
import { cstringEnd, decodeText, encodeCString, writeHeader } from "./_cstring.ts";

/** Where the statement name of a Bind body starts (just after the portal name's NUL). */
export function bindStatementStart(body: Uint8Array): number {
  return cstringEnd(body, 0, "Bind") + 1;
}

/** Where the statement name of a Bind body ends (the index of its NUL), given where it starts. */
export function bindStatementEnd(body: Uint8Array, start: number): number {
  return cstringEnd(body, start, "Bind");
}

/** The portal and statement names of a Bind body. */
export function decodeBindNames(body: Uint8Array): { portal: string; statement: string } {
  const start = bindStatementStart(body);
  const end = bindStatementEnd(body, start);
  return { portal: decodeText(body, 0, start - 1), statement: decodeText(body, start, end) };
}

/**
 * The head of a Bind frame that names `statement` (a C string, NUL included) instead: type, the new length,
 * the portal name, the new statement name. The client's frame from body offset `statementEnd + 1` on follows
 * it unchanged. `bodyLength` is the whole body's length (the body given may be only its head).
 */
export function encodeBindHead(body: Uint8Array, bodyLength: number, statementStart: number, statementEnd: number, statement: Uint8Array): Uint8Array {
  const newBodyLength = bodyLength - (statementEnd + 1 - statementStart) + statement.length;
  const head = new Uint8Array(5 + statementStart + statement.length);
  writeHeader(head, FRONTEND.BIND, newBodyLength);
  for (let i = 0; i < statementStart; i++) head[5 + i] = body[i]!; // the portal name: short, no view needed
  head.set(statement, 5 + statementStart);
  return head;
}

/** A whole Bind frame with text parameters (null is SQL NULL) and `resultFormats` (default: all text). */
export function encodeBind(portal: string, statement: string, parameters: ReadonlyArray<string | null> = [], resultFormats: readonly number[] = []): Uint8Array {
  const encoder = new TextEncoder();
  const values = parameters.map((p) => p === null ? null : encoder.encode(p));
  const names = [encodeCString(portal), encodeCString(statement)];
  let length = names[0]!.length + names[1]!.length + 2 + 2 + 2 + 2 * resultFormats.length;
  for (const v of values) length += 4 + (v?.length ?? 0);
  const frame = new Uint8Array(5 + length);
  writeHeader(frame, FRONTEND.BIND, length);
  let at = 5;
  for (const n of names) {
    frame.set(n, at);
    at += n.length;
  }
  const int16 = (n: number) => {
    frame[at++] = (n >> 8) & 255;
    frame[at++] = n & 255;
  };
  int16(0); // no parameter format codes: all text
  int16(values.length);
  for (const v of values) {
    const n = v === null ? -1 : v.length;
    frame[at++] = (n >>> 24) & 255;
    frame[at++] = (n >>> 16) & 255;
    frame[at++] = (n >>> 8) & 255;
    frame[at++] = n & 255;
    if (v !== null) {
      frame.set(v, at);
      at += v.length;
    }
  }
  int16(resultFormats.length);
  for (const f of resultFormats) int16(f);
  return frame;
}
