/**
 * The prepared statements of one pool, shared by its clients: each distinct (query text, parameter type OIDs)
 * gets one id, and every server connection of the pool knows it as `pgrelay_<id>`, so two clients that prepare
 * the same query under different names share one server-side statement. Entries are counted by the client
 * names that map to them and forgotten at zero, so the registry is bounded by the clients' maps. A server may
 * still hold `pgrelay_<id>` of a forgotten id; its LRU evicts it in time and ids are never reused.
 * Also holds the pool's hit, miss and eviction counters.
 */
import { encodeClose } from "../protocol/close_message.ts";
import { TARGET } from "../protocol/describe_message.ts";
import { encodeDescribe } from "../protocol/describe_message.ts";
import { renameParse } from "../protocol/parse_message.ts";

/** Server-side name of statement `id`. */
export const statementName = (id: number): string => `pgrelay_${id}`;

export class Statement {
  readonly id: number;
  readonly key: string;
  /** `pgrelay_<id>` as a C string. */
  readonly name: Uint8Array;
  /** The Parse frame that prepares it on a server. */
  readonly parse: Uint8Array;
  /** Client names that map to it. */
  refs = 0;
  #describe: Uint8Array | undefined;

  constructor(id: number, key: string, rest: Uint8Array) {
    this.id = id;
    this.key = key;
    this.name = new TextEncoder().encode(`${statementName(id)}\0`);
    this.parse = renameParse(rest, this.name);
  }

  /** Describe of this statement under its server-side name (built once). */
  get describe(): Uint8Array {
    return this.#describe ??= encodeDescribe(TARGET.STATEMENT, this.name);
  }
}

/** Close of the statement `pgrelay_<id>` (evictions; not hot). */
export const closeStatementFrame = (id: number): Uint8Array => encodeClose(TARGET.STATEMENT, statementName(id));

/** Lossless: one code point per byte, so different bytes never share a key. */
const keyDecoder = new TextDecoder("latin1");

export class StatementRegistry {
  readonly #byKey = new Map<string, Statement>();
  #nextId = 1;
  /** A statement a client needed was already on its server (no Parse sent). */
  hits = 0;
  /** A statement a client needed had to be prepared on its server. */
  misses = 0;
  /** Statements closed on a server to make room. */
  evictions = 0;

  /** Distinct statements known. */
  get size(): number {
    return this.#byKey.size;
  }

  /**
   * The statement whose query and parameter types are `rest` (a Parse body after its name), with one more
   * reference. `rest` is copied when the statement is new.
   */
  acquire(rest: Uint8Array): Statement {
    const key = keyDecoder.decode(rest);
    let statement = this.#byKey.get(key);
    if (statement === undefined) {
      statement = new Statement(this.#nextId++, key, rest);
      this.#byKey.set(key, statement);
    }
    statement.refs++;
    return statement;
  }

  /** Drops one reference; the statement is forgotten at zero. */
  release(statement: Statement): void {
    if (--statement.refs <= 0 && this.#byKey.get(statement.key) === statement) this.#byKey.delete(statement.key);
  }
}
