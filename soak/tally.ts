/** Operations and errors per client kind: injected (expected) failures vs unexpected ones. */

export const CLIENT_KINDS = ["pgbench", "copy", "cancel", "tls", "vanish", "malformed", "reload"] as const;
export type ClientKind = typeof CLIENT_KINDS[number];

/** How many unexpected error messages are kept per kind (the rest are only counted). */
const KEPT_MESSAGES = 8;

export interface KindCount {
  ops: number;
  /** Failures the soak injected on purpose (a cancelled query, a refused malformed client), by reason. */
  expected: Map<string, number>;
  unexpected: number;
  /** The first few unexpected errors, with the time into the run they happened. */
  messages: string[];
}

export class Tally {
  readonly #counts = new Map<ClientKind, KindCount>();
  readonly #started = Date.now();
  readonly #onUnexpected: ((line: string) => void) | undefined;

  /** `onUnexpected` sees each kept unexpected error as it happens (for live progress). */
  constructor(onUnexpected?: (line: string) => void) {
    this.#onUnexpected = onUnexpected;
    for (const kind of CLIENT_KINDS) this.#counts.set(kind, { ops: 0, expected: new Map(), unexpected: 0, messages: [] });
  }

  ok(kind: ClientKind, ops = 1): void {
    this.#of(kind).ops += ops;
  }

  /** One operation whose failure was the point (counted as an op and as an expected error). */
  expected(kind: ClientKind, reason: string): void {
    const count = this.#of(kind);
    count.ops++;
    count.expected.set(reason, (count.expected.get(reason) ?? 0) + 1);
  }

  unexpected(kind: ClientKind, what: string, error: unknown): void {
    const count = this.#of(kind);
    count.ops++;
    count.unexpected++;
    if (count.messages.length < KEPT_MESSAGES) {
      const seconds = ((Date.now() - this.#started) / 1000).toFixed(1);
      const text = error instanceof Error ? error.message : String(error);
      const line = `+${seconds}s ${what}: ${text.split("\n").slice(0, 6).join(" | ")}`;
      count.messages.push(line);
      this.#onUnexpected?.(line);
    }
  }

  get(kind: ClientKind): Readonly<KindCount> {
    return this.#of(kind);
  }

  #of(kind: ClientKind): KindCount {
    return this.#counts.get(kind)!;
  }
}

/** Sum of a kind's expected errors. */
export function expectedTotal(count: Readonly<KindCount>): number {
  let total = 0;
  for (const n of count.expected.values()) total += n;
  return total;
}
