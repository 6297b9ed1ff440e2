/**
 * One connection from pgrelay to a server: its socket, what the server told about itself (ServerFacts), where
 * it came from (route, cluster, host) and the scanner that walks the server's stream. It is an object of its
 * own, apart from any client: a client session holds a *binding* to at most one, and the server connection's
 * stream state (frame boundaries, transaction status, parameters) carries over from one binding to the next.
 */
import type { FrameScanner } from "../protocol/frame_scanner.ts";
import type { BackendObserver } from "./backend_observer.ts";
import type { RelaySocket, SocketAddress, SocketEvents } from "../core/socket.ts";
import type { HostState } from "../routing/host_state.ts";
import type { RoutedCluster } from "../routing/router.ts";
import type { Target } from "../routing/target.ts";
import { ServerFacts } from "./server_facts.ts";

/** The route that chose a server connection and the host it runs on. */
export interface ServerPlacement {
  readonly route: string;
  readonly cluster: RoutedCluster;
  readonly target: Target;
  readonly host: HostState;
}

export class ServerConnection {
  readonly socket: RelaySocket;
  readonly facts: ServerFacts;
  readonly placement: ServerPlacement;
  /** The scanner of the server's stream, once pgrelay relays it (none for TLS passthrough). */
  scanner: FrameScanner | null = null;
  /** What reads the scanner's frames into `facts`; its `events` go to the client session bound now. */
  observer: BackendObserver | null = null;
  /** The server sent a FATAL (or PANIC): its close needs no word of pgrelay's. */
  fatal = false;
  #open = true;
  /** A client session installed its handlers: the socket's close reaches #closed through them. */
  #listening = false;
  /** Ends the count of this connection on its host (least_connections); called once. */
  #release: (() => void) | undefined;

  constructor(socket: RelaySocket, address: SocketAddress, placement: ServerPlacement, release: () => void) {
    this.socket = socket;
    this.placement = placement;
    this.facts = new ServerFacts(address);
    this.facts.tls = socket.tls !== undefined;
    this.#release = release;
  }

  get open(): boolean {
    return this.#open;
  }

  /** Hands the socket's events to the client session bound to this connection now. */
  listen(events: SocketEvents): void {
    this.#listening = true;
    this.socket.listen({
      data: events.data,
      drain: events.drain,
      close: (error) => {
        this.#closed();
        events.close(error);
      },
    });
  }

  /** Flushes what is queued, then closes. */
  end(): void {
    if (!this.#open) return;
    this.socket.end();
    if (!this.#listening) this.#closed();
  }

  /** Closes now, dropping anything queued. */
  destroy(): void {
    if (!this.#open) return;
    this.socket.destroy();
    // Before a session listens (a login that failed, a host whose role was wrong), nobody waits for the close.
    if (!this.#listening) this.#closed();
  }

  #closed(): void {
    this.#open = false;
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}
