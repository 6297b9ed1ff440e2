/**
 * A client kind's loop: one bounded operation after another until the load ends. Every operation has a
 * deadline, and every socket it opens is destroyed when it ends, whatever happened.
 */
import type { Socket } from "node:net";
import type { TestPki } from "../tests/support/certs.ts";
import type { PostgresUsers } from "../tests/support/postgres.ts";
import type { PortLabels } from "./port_labels.ts";
import type { ClientKind, Tally } from "./tally.ts";

/** What a client kind needs to reach one pgrelay. */
export interface LoadContext {
  readonly label: string;
  readonly port: number;
  readonly pki: TestPki;
  readonly users: PostgresUsers;
  readonly tally: Tally;
  /** Date.now() at which the load ends. */
  readonly endsAt: number;
  /** Aborted on Ctrl-C or when pgrelay died: the loops stop. */
  readonly signal: AbortSignal;
  /**
   * Local port of each raw connection → what it was doing ("vanish mid-query (rst)"): pgrelay logs the
   * client address of every session, so sessions left open at the end can be traced to their scenario.
   */
  readonly ports: PortLabels;
}

/** A number of successful operations, or an injected failure that happened as intended. */
export type Outcome = number | { expected: string };

/** Sockets and cleanups of one operation; disposed when it ends or times out. */
export class Scope {
  /** What the operation is doing; names its connections in {@link LoadContext.ports}. */
  label: string;
  readonly #sockets = new Set<Socket>();
  readonly #cleanups: (() => void)[] = [];

  constructor(label: string) {
    this.label = label;
  }

  track<T extends Socket>(socket: T): T {
    this.#sockets.add(socket);
    socket.once("error", () => {}); // errors are seen by whoever reads; never an uncaught exception
    return socket;
  }

  defer(cleanup: () => void): void {
    this.#cleanups.push(cleanup);
  }

  dispose(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    for (const cleanup of this.#cleanups.splice(0)) {
      try {
        cleanup();
      } catch {
        // best effort
      }
    }
  }
}

export interface LoopSpec {
  kind: ClientKind;
  /** Pause between operations (ms). */
  pauseMs: number;
  /** An operation still running after this is an unexpected error ("stuck"). */
  timeoutMs: number;
  op: (scope: Scope, iteration: number) => Promise<Outcome>;
}

export async function runLoop(ctx: LoadContext, spec: LoopSpec): Promise<void> {
  for (let i = 0; Date.now() < ctx.endsAt && !ctx.signal.aborted; i++) {
    const scope = new Scope(spec.kind);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${spec.timeoutMs} ms (operation stuck)`)), spec.timeoutMs);
    });
    try {
      const running = spec.op(scope, i);
      running.catch(() => {}); // after a timeout its late rejection is expected, not unhandled
      const outcome = await Promise.race([running, timeout]);
      if (typeof outcome === "number") ctx.tally.ok(spec.kind, outcome);
      else ctx.tally.expected(spec.kind, outcome.expected);
    } catch (err) {
      if (!ctx.signal.aborted) ctx.tally.unexpected(spec.kind, `${ctx.label} ${spec.kind} #${i}`, err);
    } finally {
      clearTimeout(timer);
      scope.dispose();
    }
    await sleep(spec.pauseMs, ctx.signal);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** An integer in [0, n). */
export function randomInt(n: number): number {
  return Math.floor(Math.random() * n);
}
