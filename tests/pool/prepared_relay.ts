/**
 * A test stand-in for the relay around PreparedStatements and RequestQueue: feeds whole client frames and
 * server byte streams through them exactly as the relay must (send what frontend() sends, then the client's
 * frame unless DROP, or its tail after REPLACE_HEAD; swallow what backend() says; hand out nextLocal()).
 */
import { ACTION, PreparedStatements } from "../../src/pool/prepared_statements.ts";
import { RequestQueue, VERDICT } from "../../src/pool/request_queue.ts";
import type { ServerStatements } from "../../src/pool/server_statements.ts";
import type { StatementRegistry } from "../../src/pool/statement_registry.ts";
import { concatBytes } from "../support/bytes.ts";

/** Splits bytes holding whole frames into frames (views). */
export function frames(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getInt32(0);
    out.push(bytes.subarray(at, at + 1 + length));
    at += 1 + length;
  }
  return out;
}

export class PreparedRelay {
  readonly queue: RequestQueue;
  readonly statements: PreparedStatements;
  #toServer: Uint8Array[] = [];
  #toClient: Uint8Array[] = [];

  constructor(registry: StatementRegistry, options: { maxStatements?: number; capacity?: number } = {}) {
    this.queue = new RequestQueue(options.capacity === undefined ? {} : { capacity: options.capacity });
    this.statements = new PreparedStatements({
      registry,
      queue: this.queue,
      send: (frame) => this.#toServer.push(frame.slice()),
      ...(options.maxStatements === undefined ? {} : { maxStatements: options.maxStatements }),
    });
  }

  attach(server: ServerStatements): void {
    this.statements.attach(server);
  }

  detach(): void {
    if (!this.queue.releasable) throw new Error("detach() while the server is not releasable");
    this.statements.detach();
  }

  /** Client frames held after ACTION.WAIT. */
  #held: Uint8Array[] = [];

  /** True while client frames are held (ACTION.WAIT) until more server replies come. */
  get waiting(): boolean {
    return this.#held.length > 0;
  }

  /**
   * Client frames in; returns the bytes the server gets. Replies owed at once go to takeClient(). After
   * ACTION.WAIT the rest is held: feed server replies, then call client() again (with no frames) to resume.
   */
  client(...input: Uint8Array[]): Uint8Array {
    const queue = [...this.#held, ...input.flatMap((bytes) => frames(bytes))];
    this.#held = [];
    for (let i = 0; i < queue.length; i++) {
      const frame = queue[i]!;
      const body = frame.subarray(5);
      const action = this.statements.frontend(frame[0]!, body);
      if (action === ACTION.WAIT) {
        this.#held = queue.slice(i);
        break;
      }
      if (action === ACTION.FORWARD) this.#toServer.push(frame.slice());
      else if (action === ACTION.REPLACE_HEAD) this.#toServer.push(body.slice(this.statements.replacedBodyBytes));
      this.#drainLocal();
    }
    const out = concatBytes(this.#toServer);
    this.#toServer = [];
    return out;
  }

  /** Server bytes in; returns the bytes the client gets. */
  server(bytes: Uint8Array): Uint8Array {
    for (const frame of frames(bytes)) {
      if (this.queue.backend(frame[0]!, frame.subarray(5)) === VERDICT.FORWARD) this.#toClient.push(frame.slice());
      this.#drainLocal();
    }
    return this.takeClient();
  }

  /** Bytes the client got since the last call. */
  takeClient(): Uint8Array {
    const out = concatBytes(this.#toClient);
    this.#toClient = [];
    return out;
  }

  #drainLocal(): void {
    for (let local = this.queue.nextLocal(); local !== undefined; local = this.queue.nextLocal()) this.#toClient.push(local.slice());
  }
}
