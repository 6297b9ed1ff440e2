/**
 * Test-only frame reader over any node socket (plain TCP or TLS), plus the upstream half of
 * `auth.mode: scram`: answering PostgreSQL's SASL challenges with {@link ScramClientWithKey}.
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { connect as netConnect, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { ScramClientWithKey } from "../../src/auth/scram_client_with_key.ts";
import type { ScramVerifier } from "../../src/auth/scram_verifier.ts";
import { authCode, type BackendMessage, readCString, saslMechanisms, splitFrame } from "../support/backend_frames.ts";
export { saslMechanisms };
import { ByteQueue } from "../support/byte_queue.ts";
import * as frontend from "../support/frontend_frames.ts";

/** A connection whose backend messages can be awaited one by one. */
export class PgWire {
  readonly #socket: Socket | TLSSocket;
  readonly #pending = new ByteQueue();
  #waiter: (() => void) | undefined;
  #closed = false;

  constructor(socket: Socket | TLSSocket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#pending.append(new Uint8Array(chunk));
      this.#wake();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on("error", () => {});
  }

  static connect(host: string, port: number): Promise<PgWire> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port }, () => resolve(new PgWire(socket)));
      socket.once("error", reject);
    });
  }

  send(bytes: Uint8Array): void {
    this.#socket.write(bytes);
  }

  async read(timeoutMs = 10_000): Promise<BackendMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = splitFrame(this.#pending.view());
      if (frame !== undefined) {
        this.#pending.skip(frame.next);
        return frame.message;
      }
      if (this.#closed) throw new Error("connection closed while waiting for a backend message");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a backend message");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Reads an Authentication ('R') message of the given code; throws with the error text on 'E'. */
  async expectAuth(code: number): Promise<Uint8Array> {
    const message = await this.read();
    if (message.type === "E") throw new UpstreamError(message.body);
    if (message.type !== "R" || authCode(message.body) !== code) {
      throw new Error(
        `expected Authentication ${code}, got ${message.type} ${
          message.type === "R" ? authCode(message.body) : ""
        }`,
      );
    }
    return message.body.subarray(4);
  }

  close(): void {
    this.#socket.destroy();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}

/** An ErrorResponse where authentication should have continued. */
export class UpstreamError extends Error {
  readonly fields: Record<string, string>;
  constructor(body: Uint8Array) {
    const fields: Record<string, string> = {};
    let at = 0;
    while (at < body.length && body[at] !== 0) {
      const [value, next] = readCString(body, at + 1);
      fields[String.fromCharCode(body[at]!)] = value;
      at = next;
    }
    super(`${fields["S"]} ${fields["C"]}: ${fields["M"]}`);
    this.fields = fields;
  }
}


/**
 * Startup as `user`, then the SASL exchange with only the ClientKey and verifier, through AuthenticationOk.
 * Throws {@link UpstreamError} when the server answers with an ErrorResponse.
 */
export async function loginWithClientKey(
  wire: PgWire,
  user: string,
  clientKey: Uint8Array,
  verifier: ScramVerifier,
): Promise<void> {
  wire.send(frontend.startupMessage({ user, database: "postgres" }));
  const mechanisms = saslMechanisms(await wire.expectAuth(10));
  if (!mechanisms.includes("SCRAM-SHA-256")) throw new Error(`no SCRAM-SHA-256 in ${mechanisms.join(", ")}`);
  const scram = new ScramClientWithKey({ clientKey, verifier });
  const initial = scram.initialResponse();
  wire.send(frontend.saslInitialResponse(initial.mechanism, initial.data));
  const serverFirst = await wire.expectAuth(11);
  wire.send(frontend.saslResponse(await scram.handleContinue(serverFirst)));
  await scram.handleFinal(await wire.expectAuth(12));
  await wire.expectAuth(0);
}
