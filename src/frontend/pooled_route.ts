/**
 * What a client session of a pooled route (routes[].pool) needs from the pool layer: borrow a server
 * connection logged in as the client's user to its database, and give it back. The pool layer
 * (src/pool/) implements it; the frontend never opens a server connection itself on a pooled route.
 */
import type { ServerConnection } from "../backend/server_connection.ts";
import type { ClientLogin } from "../core/scram_login.ts";
import type { RouteFacts } from "../routing/route_table.ts";
import type { PinReason } from "../pool/pin_reasons.ts";

export type PoolMode = "session" | "transaction";

export interface PooledRoute {
  /** The route's label (its name, else `routes[N]`). */
  readonly route: string;
  readonly mode: PoolMode;
  /** Session mode: run on a server when its client leaves, before another client gets it. */
  readonly resetQuery: string;
  /** Transaction mode: what session-level state that cannot be replayed does (pin the server, or 0A000). */
  readonly onPin: "pin" | "error";
  /**
   * Lends a server connection, idle (ReadyForQuery `I`), logged in as the client's user. Rejects with a
   * ClientError: severity ERROR 53300 when the wait timed out or too many wait (the client stays
   * connected), FATAL for what ends the session (no route, no eligible host, the server refused the login).
   */
  lease(abandoned: () => boolean): Promise<ServerConnection>;
  /** The client's state now pins it to `server` (counted in pgrelay_pool_pinned_total). */
  pinned(server: ServerConnection, reason: PinReason): void;
  /** Takes a server back: `reusable` only when it is idle with nothing outstanding; otherwise it is closed. */
  release(server: ServerConnection, reusable: boolean): void;
}

/** The pool layer as a frontend sees it. */
export interface Pools {
  /** The pool of the route these facts take, or undefined when that route does not pool. */
  poolFor(facts: RouteFacts, client: { user: string; database: string; login: ClientLogin }): PooledRoute | undefined;
}
