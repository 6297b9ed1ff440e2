/**
 * One token bucket per key (client address): `rate` tokens a second, holding at most `burst`. A key whose
 * bucket has refilled is forgotten when the table grows, so memory follows the active sources only.
 */

const PRUNE_AT = 4096;

export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string, rate: number, burst: number): boolean {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= PRUNE_AT) this.#prune(now, rate, burst);
      bucket = { tokens: burst, at: now };
      this.#buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Sources tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  #prune(now: number, rate: number, burst: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * rate >= burst) this.#buckets.delete(key);
    }
  }
}
