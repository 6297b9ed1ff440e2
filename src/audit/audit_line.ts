/**
 * Builds the audit log's JSON lines. A `query` line is written for every query, so it is put together
 * by hand from a per-session prefix instead of through an object and `JSON.stringify` (a third of the
 * cost); the other events are rare and go through `JSON.stringify`. Both give the same JSON.
 */
import type { QueryEvent } from "./query_tracker.ts";

let timestampMs = -1;
let timestampText = "";

/** A time (default: now) as ISO 8601 text, made once per millisecond however many lines share it. */
export function timestamp(epochMs: number = Date.now()): string {
  const now = Math.floor(epochMs);
  if (now !== timestampMs) {
    timestampMs = now;
    timestampText = new Date(now).toISOString();
  }
  return timestampText;
}

/** The `session` and `client` members every line of one session carries, as JSON text. */
export function sessionMembers(session: string, client: string): string {
  return `"session":${JSON.stringify(session)},"client":${JSON.stringify(client)}`;
}

/** A line for any event: `ts`, `event`, the session's members, then `fields` (undefined ones left out). */
export function eventLine(event: string, members: string, fields: object): string {
  const rest = JSON.stringify(fields);
  return `{"ts":"${timestamp()}","event":${JSON.stringify(event)},${members}${rest === "{}" ? "}" : "," + rest.slice(1)}`;
}

/** A `query` line stamped `epochMs`; the same JSON as `eventLine("query", members, event)` at that time. */
export function queryLine(members: string, event: QueryEvent, epochMs: number): string {
  let line = `{"ts":"${timestamp(epochMs)}","event":"query",${members},"protocol":"${event.protocol}"`;
  if (event.statement !== undefined) line += `,"statement":${JSON.stringify(event.statement)}`;
  if (event.text !== undefined) line += `,"text":${JSON.stringify(event.text)}`;
  if (event.text_truncated) line += `,"text_truncated":true`;
  if (event.function_oid !== undefined) line += `,"function_oid":${event.function_oid}`;
  if (event.execution !== undefined) line += `,"execution":${event.execution}`;
  line += `,"duration_ms":${event.duration_ms}`;
  if (event.tag !== undefined) line += `,"tag":${JSON.stringify(event.tag)}`;
  if (event.rows !== undefined) line += `,"rows":${event.rows}`;
  if (event.commands !== undefined) line += `,"commands":${JSON.stringify(event.commands)}`;
  if (event.commands_truncated) line += `,"commands_truncated":true`;
  if (event.sqlstate !== undefined) line += `,"sqlstate":${JSON.stringify(event.sqlstate)}`;
  return line + "}";
}
