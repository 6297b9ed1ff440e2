/**
 * pgrelay's own short exchanges on a server connection that no client is relayed to at that moment: the
 * rest of a pooled login, the SET statements that make a borrowed server match its client, a reset query.
 * The server's frames are walked by the connection's own scanner, so its facts (parameters, transaction
 * status) stay current, and none of them reaches a client.
 */
import { BACKEND_CAPTURES, type BackendEvents, BackendObserver } from "./backend_observer.ts";
import { FrameScanner } from "../protocol/frame_scanner.ts";
import { ProtocolError } from "../protocol/protocol_error.ts";
import { query } from "../protocol/frontend_messages.ts";
import { BACKEND } from "../protocol/codes.ts";

const NO_BODY = new Uint8Array(0);
import type { ServerConnection } from "./server_connection.ts";

const IGNORED: BackendEvents = {
  frame() {},
  ready() {},
  transactionEnded() {},
  saslMechanisms() {},
  error() {},
};

/** Gives `server` its own scanner: a pooled connection keeps one for life, whoever is bound to it. */
export function observeServer(server: ServerConnection, maxBodyBytes: number): void {
  if (server.scanner) return;
  const observer = new BackendObserver(server.facts, IGNORED);
  server.observer = observer;
  server.scanner = new FrameScanner(observer, { maxBodyBytes, capture: BACKEND_CAPTURES, peer: "server" });
}

/**
 * Reads the server's frames (after `initial`, bytes already read) up to the next ReadyForQuery, walking them
 * through its scanner with no client bound, after writing `send` if given. Resolves with the first
 * ErrorResponse's fields (undefined when none); rejects when the server closes, breaks the protocol or says
 * nothing within `timeoutMs`. Leaves the socket paused. Call observeServer first.
 */
export function exchange(
  server: ServerConnection,
  options: {
    send?: Uint8Array;
    initial?: Uint8Array;
    timeoutMs: number;
    /** Sees every captured body, and the EmptyQueryResponse and PortalSuspended frames (empty bodies). */
    observe?: (type: number, body: Uint8Array) => void;
  },
): Promise<Map<string, string> | undefined> {
  const observer = server.observer!;
  const scanner = server.scanner!;
  const bound = observer.events;
  return new Promise((resolve, reject) => {
    let error: Map<string, string> | undefined;
    let done = false;
    const finish = (failure?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      server.socket.pause();
      observer.events = bound;
      if (failure) reject(failure);
      else resolve(error);
    };
    const timer = setTimeout(() => finish(new Error(`the server sent no ReadyForQuery within ${options.timeoutMs} ms`)), options.timeoutMs);
    const observe = options.observe;
    observer.events = {
      ...IGNORED,
      error: (fields) => error ??= fields,
      readyForQuery: () => finish(),
      ...(observe
        ? {
          body: observe,
          frame: (type: number) => {
            if (type === BACKEND.EMPTY_QUERY_RESPONSE || type === BACKEND.PORTAL_SUSPENDED) observe(type, NO_BODY);
          },
        }
        : {}),
    };
    const take = (chunk: Uint8Array) => {
      if (done) return;
      try {
        // A server says nothing after its ReadyForQuery until asked: a chunk never holds more than this answer.
        scanner.scan(chunk);
      } catch (caught) {
        if (!(caught instanceof ProtocolError)) throw caught;
        finish(new Error(`the server sent a malformed message: ${caught.message}`));
      }
    };
    server.listen({
      data: take,
      drain() {},
      close: (closeError) => finish(new Error(`the server closed the connection${closeError ? `: ${closeError.message}` : ""}`)),
    });
    if (options.initial && options.initial.length > 0) take(options.initial);
    if (done) return;
    if (options.send) server.socket.write(options.send);
    server.socket.resume();
  });
}

/** Runs `sql` as a simple Query without relaying its answer; resolves with the first error's fields. */
export const runQuietly = (
  server: ServerConnection,
  sql: string,
  timeoutMs: number,
  observe?: (type: number, body: Uint8Array) => void,
) => exchange(server, { send: query(sql), timeoutMs, ...(observe ? { observe } : {}) });

/**
 * A server connection no client is bound to (idle in a pool): what it still sends (a NOTICE, a FATAL before
 * a shutdown) is walked by its scanner so its stream stays in step, and its close is noticed (`open` turns
 * false) so it is never lent again.
 */
export function parkServer(server: ServerConnection): void {
  const observer = server.observer;
  const scanner = server.scanner;
  if (observer) observer.events = IGNORED;
  server.listen({
    data: (chunk) => {
      try {
        scanner?.scan(chunk);
      } catch (caught) {
        if (!(caught instanceof ProtocolError)) throw caught;
        server.destroy();
      }
    },
    drain() {},
    close() {},
  });
  server.socket.resume();
}
