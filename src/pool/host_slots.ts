/**
 * `max_server_connections` for one host, shared by every pool that connects to it. While the host has free
 * slots, pools take them as they need. Once it is full, a pool that needs one more connection joins a
 * round-robin queue, and every slot that frees goes to the next pool in that queue that still has waiters,
 * not back to whichever pool is busiest: a pool that keeps its own servers busy cannot starve the others.
 * To free slots, pools close a released server instead of keeping it while another pool waits
 * (`contended`), and an idle server of another pool is closed as soon as a pool queues.
 */
import type { SlotGate, SlotUser } from "./pool.ts";

export class HostSlots implements SlotGate {
  readonly max: number;
  #used = 0;
  /** Pools waiting for a slot, in round-robin order; `#turn` is where the next offer starts. */
  readonly #queue: SlotUser[] = [];
  #turn = 0;
  /** Pools holding connections to this host, for closing an idle one when another pool queues. */
  readonly #members = new Set<SlotUser>();

  constructor(max: number) {
    this.max = max;
  }

  get used(): number {
    return this.#used;
  }

  /** Pools queued for a slot now. */
  get queued(): number {
    return this.#queue.length;
  }

  take(pool: SlotUser, queue: boolean): boolean {
    this.#members.add(pool);
    if (this.#used < this.max) {
      this.#used++;
      return true;
    }
    if (!queue) return false;
    if (!this.#queue.includes(pool)) this.#queue.push(pool);
    // Free a slot held by an idle server of another pool; give() offers it round robin.
    for (const other of this.#members) {
      if (other !== pool && other.closeOneIdle()) break;
    }
    return false;
  }

  give(_pool: SlotUser): void {
    this.#used--;
    while (this.#queue.length > 0 && this.#used < this.max) {
      if (this.#turn >= this.#queue.length) this.#turn = 0;
      const next = this.#queue[this.#turn]!;
      this.#used++; // held for `next` while it decides
      if (next.offerSlot()) {
        this.#turn++; // the next free slot goes to the pool after it
        return;
      }
      this.#used--;
      this.#dequeue(this.#turn); // nobody waits there any more
    }
  }

  contended(pool: SlotUser): boolean {
    for (let i = 0; i < this.#queue.length;) {
      const queued = this.#queue[i]!;
      if (queued.wantsSlot()) {
        if (queued !== pool) return true;
        i++;
      } else {
        this.#dequeue(i); // its waiters were served or gave up
      }
    }
    return false;
  }

  /** A closed pool holds nothing and waits for nothing. */
  forget(pool: SlotUser): void {
    this.#members.delete(pool);
    const at = this.#queue.indexOf(pool);
    if (at >= 0) this.#dequeue(at);
  }

  #dequeue(at: number): void {
    this.#queue.splice(at, 1);
    if (this.#turn > at) this.#turn--;
  }
}
