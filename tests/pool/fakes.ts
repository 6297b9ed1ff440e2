/** A manual clock and a scripted server factory, so pool tests run without sockets or wall time. */
import type { ServerFactory } from "../../src/pool/pool.ts";
import type { PoolTimers } from "../../src/pool/pool_timers.ts";
import { parsePool, type PoolSettings } from "../../src/pool/pool_schema.ts";

export class ManualTimers implements PoolTimers {
  #now = 0;
  #next = 1;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers pending now. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves the clock forward, firing due timers in order (and letting promise callbacks run between them). */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].at);
      due[1].callback();
      await settle();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets pending promise callbacks (logins resolving, waiters being served) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

export interface FakeServer {
  readonly id: number;
  closed: boolean;
}

/** Opens FakeServers at once, or holds each open until the test resolves or fails it (manual mode). */
export class FakeFactory implements ServerFactory<FakeServer> {
  readonly opened: FakeServer[] = [];
  readonly closed: FakeServer[] = [];
  /** Logins waiting for the test (manual mode). */
  readonly logins: { resolve: () => void; fail: (error: Error) => void }[] = [];
  manual = false;
  failWith: Error | undefined;
  attempts = 0;
  #ids = 0;

  open(): Promise<FakeServer> {
    this.attempts++;
    if (this.failWith) return Promise.reject(this.failWith);
    const make = () => {
      const server = { id: ++this.#ids, closed: false };
      this.opened.push(server);
      return server;
    };
    if (!this.manual) return Promise.resolve(make());
    return new Promise((resolve, reject) => {
      this.logins.push({ resolve: () => resolve(make()), fail: reject });
    });
  }

  close(server: FakeServer): void {
    if (server.closed) throw new Error(`server ${server.id} closed twice`);
    server.closed = true;
    this.closed.push(server);
  }

  /** Connections open now. */
  get live(): number {
    return this.opened.length - this.closed.length;
  }
}

/** Pool settings from a raw block, with small numbers for tests. */
export function settingsOf(raw: Record<string, unknown>): PoolSettings {
  return parsePool({ mode: "transaction", size: 2, ...raw });
}
