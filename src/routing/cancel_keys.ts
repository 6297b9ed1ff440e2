/**
 * pgrelay-issued cancel keys. Clients see BackendKeyData of pgrelay's making, never a server's: the key
 * stays valid while the client's server connection changes (failover, pooling), and a cancel can only reach
 * the server bound to that client at the moment it arrives.
 *
 * - A key is a process id and a secret of the server's length: 4 bytes under protocol 3.0; under 3.2 up to
 *   256 (PostgreSQL 18 uses 32), so that a client never sees a shorter secret than the server would give it.
 *   Both are random (crypto.getRandomValues).
 * - The process id carries the issuing worker's id in {@link WORKER_ID_BITS} bits under the sign bit, so a
 *   worker that receives a CancelRequest for a key it did not issue knows which worker to hand it to
 *   ({@link workerOfProcessId}). The id stays positive, as a PostgreSQL pid is.
 * - Each issued key maps to a binding: an opaque server-connection handle that can change over time or be
 *   null (no server bound). A CancelRequest resolves to the bound server's real (pid, secret), or to nothing
 *   when the key is unknown, forgotten, its secret is wrong, or no server is bound: the caller then drops
 *   the request silently, as PostgreSQL does.
 * - Bounded: one entry per live client; a key is forgotten when its client ends, and issuing beyond the
 *   capacity throws.
 */

/** Bits of the process id that name the issuing worker (0 to 255). */
export const WORKER_ID_BITS = 8;
export const MAX_WORKER_ID = (1 << WORKER_ID_BITS) - 1;
/** Random bits under the worker id (the sign bit stays clear). */
const PID_RANDOM_BITS = 31 - WORKER_ID_BITS;
const PID_RANDOM_MASK = (1 << PID_RANDOM_BITS) - 1;

/** Secret lengths the protocol allows: exactly 4 under 3.0, 4 to 256 under 3.2. */
export const SECRET_LENGTH = { protocol30: 4, max: 256 } as const;

/** A backend key: what BackendKeyData carries and a CancelRequest repeats. */
export interface BackendKey {
  readonly processId: number;
  readonly secretKey: Uint8Array;
}

/** What a CancelRequest resolves to: the server connection bound now, and its real key to send it. */
export interface CancelTarget<S> {
  readonly server: S;
  readonly key: BackendKey;
}

/** The worker whose registry issued a key with this process id. */
export function workerOfProcessId(processId: number): number {
  return (processId >>> PID_RANDOM_BITS) & MAX_WORKER_ID;
}

/** A key issued to one client: rebind it as the client's server changes, forget it when the client ends. */
export class IssuedCancelKey<S> implements BackendKey {
  readonly processId: number;
  readonly secretKey: Uint8Array;
  #registry: CancelKeyRegistry<S>;
  #server: S | null;
  #live = true;

  /** @internal Created by {@link CancelKeyRegistry.issue}. */
  constructor(registry: CancelKeyRegistry<S>, processId: number, secretKey: Uint8Array, server: S | null) {
    this.#registry = registry;
    this.processId = processId;
    this.secretKey = secretKey;
    this.#server = server;
  }

  /** The server connection a cancel with this key reaches now (null: none, the cancel is dropped). */
  get server(): S | null {
    return this.#server;
  }

  get live(): boolean {
    return this.#live;
  }

  /** Binds the key to another server connection, or to none. No effect once forgotten. */
  bind(server: S | null): void {
    if (this.#live) this.#server = server;
  }

  /** The client ended: the key resolves to nothing from now on and its entry is freed. Idempotent. */
  forget(): void {
    if (!this.#live) return;
    this.#live = false;
    this.#server = null;
    this.#registry.release(this);
  }
}

export interface CancelKeyRegistryOptions<S> {
  /** This worker's id, 0 to {@link MAX_WORKER_ID}. */
  readonly workerId: number;
  /** At most this many keys at once (one per live client). */
  readonly capacity: number;
  /** The real key of a server connection (undefined if it has not sent BackendKeyData). */
  readonly keyOf: (server: S) => BackendKey | undefined;
}

export class CancelKeyRegistry<S> {
  readonly workerId: number;
  readonly capacity: number;
  #keyOf: (server: S) => BackendKey | undefined;
  /** Issued keys by process id (unique among live keys). */
  #byProcessId = new Map<number, IssuedCancelKey<S>>();

  constructor(options: CancelKeyRegistryOptions<S>) {
    if (!Number.isInteger(options.workerId) || options.workerId < 0 || options.workerId > MAX_WORKER_ID) {
      throw new RangeError(`worker id must be 0 to ${MAX_WORKER_ID}, got ${options.workerId}`);
    }
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${options.capacity}`);
    }
    this.workerId = options.workerId;
    this.capacity = options.capacity;
    this.#keyOf = options.keyOf;
  }

  /** Live keys now. */
  get size(): number {
    return this.#byProcessId.size;
  }

  /**
   * Issues a key with a secret of `secretLength` bytes (the server's: 4 under protocol 3.0), bound to
   * `server` (or to none yet). Throws RangeError for a length the protocol does not allow or when full.
   */
  issue(secretLength: number, server: S | null = null): IssuedCancelKey<S> {
    if (
      !Number.isInteger(secretLength) || secretLength < SECRET_LENGTH.protocol30 ||
      secretLength > SECRET_LENGTH.max
    ) {
      throw new RangeError(
        `a cancel secret is ${SECRET_LENGTH.protocol30} to ${SECRET_LENGTH.max} bytes, got ${secretLength}`,
      );
    }
    if (this.#byProcessId.size >= this.capacity) {
      throw new RangeError(`the cancel key registry is full (${this.capacity} live keys)`);
    }
    const random = new Uint32Array(1);
    let processId: number;
    do {
      crypto.getRandomValues(random);
      processId = (this.workerId << PID_RANDOM_BITS) | (random[0]! & PID_RANDOM_MASK);
    } while (processId === 0 || this.#byProcessId.has(processId));
    const secretKey = crypto.getRandomValues(new Uint8Array(secretLength));
    const issued = new IssuedCancelKey(this, processId, secretKey, server);
    this.#byProcessId.set(processId, issued);
    return issued;
  }

  /**
   * The server a CancelRequest with this key should reach, with the server's real key; undefined when the
   * key is not one of this registry's live keys, the secret differs, or no server (or no server key) is
   * bound. The caller drops the request silently then.
   */
  resolve(processId: number, secretKey: Uint8Array): CancelTarget<S> | undefined {
    const issued = this.#byProcessId.get(processId);
    if (!issued || !sameBytes(issued.secretKey, secretKey)) return undefined;
    const server = issued.server;
    if (server === null) return undefined;
    const key = this.#keyOf(server);
    return key ? { server, key } : undefined;
  }

  /** Whether a key with this process id was issued by this worker (otherwise hand it to its worker). */
  ownsProcessId(processId: number): boolean {
    return workerOfProcessId(processId) === this.workerId;
  }

  /** @internal Called by {@link IssuedCancelKey.forget}. */
  release(issued: IssuedCancelKey<S>): void {
    if (this.#byProcessId.get(issued.processId) === issued) this.#byProcessId.delete(issued.processId);
  }
}

/** Compares two secrets without stopping at the first difference. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
