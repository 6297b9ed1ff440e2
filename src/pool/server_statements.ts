/**
 * Which of the pool's statements one server connection has prepared (as `pgrelay_<id>`), least recently used
 * first, with a cap; and what its unnamed statement holds. Owned by the server connection; PreparedStatements
 * updates it while the connection is lent to a client. A statement used in the current checkout is never the
 * eviction victim (closing a statement also closes the portals made from it), so the cap may be passed by the
 * statements of one transaction until a later checkout.
 */

/** Statements a server connection keeps prepared by default (PgBouncer's max_prepared_statements is 200). */
export const DEFAULT_SERVER_STATEMENTS = 200;

export class ServerStatements {
  readonly capacity: number;
  /** id → checkout in which it was last used; Map order is least recently used first. */
  readonly #ids = new Map<number, number>();
  #checkout = 0;
  /** The id used last (the end of the Map's order), or -1. */
  #last = -1;
  /**
   * Who set the server's unnamed statement: a client's token (with unnamedVersion), null when it holds none,
   * undefined when unknown.
   */
  unnamedOwner: object | null | undefined = null;
  unnamedVersion = 0;

  constructor(capacity = DEFAULT_SERVER_STATEMENTS) {
    if (!(capacity >= 1)) throw new RangeError(`Server statement capacity must be at least 1, got ${capacity}`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.#ids.size;
  }

  /** Called when the connection is lent to a client. */
  beginCheckout(): void {
    this.#checkout++;
  }

  has(id: number): boolean {
    return this.#ids.has(id);
  }

  /** Marks `id` (prepared, or about to be) as the most recently used. */
  use(id: number): void {
    if (id === this.#last && this.#ids.get(id) === this.#checkout) return; // already the most recent
    this.#ids.delete(id);
    this.#ids.set(id, this.#checkout);
    this.#last = id;
  }

  delete(id: number): void {
    this.#ids.delete(id);
    if (id === this.#last) this.#last = -1;
  }

  /** The least recently used id not used in this checkout, or -1. */
  victim(): number {
    for (const [id, checkout] of this.#ids) return checkout < this.#checkout ? id : -1;
    return -1;
  }

  /** Forgets every statement (the server ran DEALLOCATE ALL or DISCARD ALL); returns the ids it had. */
  clear(): number[] {
    const ids = [...this.#ids.keys()];
    this.#ids.clear();
    this.#last = -1;
    return ids;
  }

  /** Ids, least recently used first (tests, admin). */
  ids(): number[] {
    return [...this.#ids.keys()];
  }
}
