/**
 * `acquire`: a server connection for a target, as a session needs one. Tries the cluster's candidates in
 * order (connect retry: a host that refuses or times out is marked down and the next is tried before the
 * client sees anything); when no host is eligible, holds the client until one is (a health check changed
 * something) or the hold time is over, then answers with the reason for FATAL 57P03.
 * Connecting is injected; this file opens no socket.
 */
import type { Cluster } from "./cluster.ts";
import type { HostChange, HostState } from "./host_state.ts";
import type { Target } from "./target.ts";

/** How long a client is held while no host is eligible, unless configured otherwise. */
export const DEFAULT_HOLD_MS = 10_000;

export interface AcquireOptions<C> {
  /** Opens a connection to the host; throws when it cannot. */
  readonly connect: (host: HostState) => Promise<C>;
  /**
   * Whether an error from `connect` is the host's failure (refused, timed out, reset): the host is marked
   * down and the next is tried. Other errors (a login the server refused) end the attempt. Default: all.
   */
  readonly isHostFailure?: (error: unknown) => boolean;
  /** Longest wait for an eligible host; default {@link DEFAULT_HOLD_MS}. */
  readonly holdMs?: number;
  /** Resolves at the next host change or after `ms` (HealthChecker.nextChange). Without it, no holding. */
  readonly nextChange?: (ms: number) => Promise<void>;
  /** Told of each change a failed or successful connection made (HealthChecker.report). */
  readonly report?: (host: HostState, change: HostChange | undefined) => void;
  /** Milliseconds now (performance.now by default). */
  readonly now?: () => number;
}

export type Acquired<C> =
  | { readonly ok: true; readonly host: HostState; readonly connection: C }
  | { readonly ok: false; readonly reason: string };

/** Connects to the first candidate that accepts, holding while there is none; throws what is not a host's failure. */
export async function acquire<C>(
  cluster: Cluster,
  target: Target,
  options: AcquireOptions<C>,
): Promise<Acquired<C>> {
  const now = options.now ?? (() => performance.now());
  const isHostFailure = options.isHostFailure ?? (() => true);
  const report = options.report ?? (() => {});
  const deadline = now() + (options.holdMs ?? DEFAULT_HOLD_MS);
  let lastFailure = "";
  for (;;) {
    const candidates = cluster.candidates(target);
    if (candidates.ok) {
      for (const host of candidates.hosts) {
        try {
          const connection = await options.connect(host);
          report(host, host.recordConnectSuccess());
          return { ok: true, host, connection };
        } catch (error) {
          if (!isHostFailure(error)) throw error;
          const message = error instanceof Error ? error.message : String(error);
          lastFailure = `${host.address}: ${message}`;
          report(host, host.recordConnectFailure(message));
        }
      }
    }
    const left = deadline - now();
    if (!options.nextChange || left <= 0) {
      const reason = candidates.ok
        ? `cluster "${cluster.name}" has no host for target "${target}" that accepted a connection (last: ${lastFailure})`
        : candidates.reason;
      return { ok: false, reason };
    }
    await options.nextChange(left);
  }
}
