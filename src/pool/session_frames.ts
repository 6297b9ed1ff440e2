/**
 * Feeds a {@link SessionState} from whole protocol messages: the type byte and the body after the length
 * word, as the relay has them. Messages it does not need are ignored, so every message of both directions
 * may be passed. The text is decoded as UTF-8 (the client_encoding pgrelay's pooled sessions use).
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { BACKEND, FRONTEND } from "../protocol/codes.ts";
import type { SessionState } from "./session_state.ts";

const decoder = new TextDecoder();

/** The NUL-terminated string at `offset` and the offset after its NUL. */
function cstring(body: Uint8Array, offset: number): [string, number] {
  let end = body.indexOf(0, offset);
  if (end < 0) end = body.length;
  return [decoder.decode(body.subarray(offset, end)), end + 1];
}

/** A message from the client, as it goes to the server. */
export function trackClientMessage(state: SessionState, type: number, body: Uint8Array): void {
  switch (type) {
    case FRONTEND.QUERY:
      state.query(cstring(body, 0)[0]);
      break;
    case FRONTEND.PARSE: {
      const [name, next] = cstring(body, 0);
      state.parse(name, cstring(body, next)[0]);
      break;
    }
    case FRONTEND.BIND: {
      const [portal, next] = cstring(body, 0);
      state.bind(portal, cstring(body, next)[0]);
      break;
    }
    case FRONTEND.EXECUTE:
      state.execute(cstring(body, 0)[0]);
      break;
    case FRONTEND.CLOSE:
      state.close(body[0] === 0x53 ? "S" : "P", cstring(body, 1)[0]);
      break;
    case FRONTEND.SYNC:
      state.sync();
      break;
    case FRONTEND.FUNCTION_CALL:
      state.functionCall();
      break;
  }
}

/** A message from the server, as it comes back. */
export function trackServerMessage(state: SessionState, type: number, body: Uint8Array): void {
  switch (type) {
    case BACKEND.PARAMETER_STATUS: {
      const [name, next] = cstring(body, 0);
      state.parameterStatus(name, cstring(body, next)[0]);
      break;
    }
    case BACKEND.COMMAND_COMPLETE:
      state.commandComplete(cstring(body, 0)[0]);
      break;
    case BACKEND.EMPTY_QUERY_RESPONSE:
      state.emptyQuery();
      break;
    case BACKEND.PORTAL_SUSPENDED:
      state.portalSuspended();
      break;
    case BACKEND.ERROR_RESPONSE:
      state.error();
      break;
    case BACKEND.READY_FOR_QUERY:
      if (body.length > 0) state.ready(body[0]!);
      break;
  }
}
