/** Minimal raw-protocol PostgreSQL frontend over node:net for byte-level tests. */
import { createHash } from "node:crypto";
import { connect as netConnect, type Socket } from "node:net";
import { authCode, type BackendMessage, errorFields, saslMechanisms, splitFrame } from "./backend_frames.ts";
import * as frontend from "./frontend_frames.ts";
import { ByteQueue } from "./byte_queue.ts";
import { PasswordScramClient } from "./password_scram_client.ts";
import { concatBytes } from "./bytes.ts";

const SCRAM_SHA_256 = "SCRAM-SHA-256";

export {
  authCode,
  type BackendMessage,
  commandTag,
  dataRowValues,
  errorFields,
  parameterStatus,
  parseBackendFrames,
} from "./backend_frames.ts";
export * as frontend from "./frontend_frames.ts";

/** Default wait for server output before a read gives up. */
const DEFAULT_READ_TIMEOUT_MS = 10_000;

/** An ErrorResponse received where success was expected; `fields` are keyed by code letter. */
export class BackendError extends Error {
  readonly fields: Record<string, string>;
  /** Every message read by the failed operation, the ErrorResponse last. */
  readonly messages: BackendMessage[];

  constructor(fields: Record<string, string>, messages: BackendMessage[]) {
    super(`${fields["S"] ?? "ERROR"} ${fields["C"] ?? "?????"}: ${fields["M"] ?? "(no message)"}`);
    this.name = "BackendError";
    this.fields = fields;
    this.messages = messages;
  }

  /** SQLSTATE ('C' field). */
  get code(): string | undefined {
    return this.fields["C"];
  }
}

/**
 * A single connection. Writes are fire-and-forget (ordered); reads consume an internal
 * buffer that reassembles frames split across TCP chunks. One reader at a time.
 */
export class RawClient {
  #socket: Socket;
  #chunks: Uint8Array[] = [];
  #pending = new ByteQueue();
  #closed = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #closedPromise: Promise<void>;
  #user = "";

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Uint8Array) => {
      const copy = new Uint8Array(chunk); // plain Uint8Array, not Buffer
      this.#chunks.push(copy);
      this.#pending.append(copy);
      this.#notify();
    });
    socket.on("error", (err: Error) => {
      this.#error ??= err;
      this.#notify();
    });
    this.#closedPromise = new Promise((resolve) => {
      socket.on("close", () => {
        this.#closed = true;
        this.#notify();
        resolve();
      });
    });
  }

  /** Reads a connection that is already open, e.g. a TLS socket after SSLRequest. */
  static over(socket: Socket): RawClient {
    return new RawClient(socket);
  }

  /** Opens a TCP connection (rejects on refusal or after `timeoutMs`). */
  static connect(host: string, port: number, timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once("error", onError);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.off("error", onError);
        resolve(new RawClient(socket));
      });
    });
  }

  /** Every byte received from the server so far, in order. */
  get received(): Uint8Array {
    return concat(this.#chunks);
  }

  /** The received bytes as the TCP chunks they arrived in. */
  get receivedChunks(): readonly Uint8Array[] {
    return this.#chunks;
  }

  /** Bytes received but not yet consumed by a read. */
  get unread(): Uint8Array {
    return this.#pending.view().slice();
  }

  /** True once the socket has closed. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Resolves when the socket has closed. */
  get closed(): Promise<void> {
    return this.#closedPromise;
  }

  /** Writes raw bytes. */
  sendBytes(bytes: Uint8Array): void {
    this.#socket.write(bytes);
  }

  /** Sends a protocol-3.0 StartupMessage; `user` is remembered for md5 authentication. */
  startup(params: Record<string, string>): void {
    this.#user = params["user"] ?? "";
    this.sendBytes(frontend.startupMessage(params));
  }

  /**
   * Answers cleartext, md5 and SCRAM-SHA-256 challenges, then reads through ReadyForQuery.
   * Returns all messages read; throws {@link BackendError} on an ErrorResponse.
   */
  async authenticate(password: string, timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<BackendMessage[]> {
    const messages: BackendMessage[] = [];
    let scram: PasswordScramClient | undefined;
    for (;;) {
      const message = await this.readMessage(timeoutMs);
      messages.push(message);
      if (message.type === "E") throw new BackendError(errorFields(message.body), messages);
      if (message.type === "Z") return messages;
      if (message.type !== "R") continue;
      const code = authCode(message.body);
      switch (code) {
        case 0: // AuthenticationOk
          break;
        case 3: // AuthenticationCleartextPassword
          this.sendBytes(frontend.passwordMessage(password));
          break;
        case 5: // AuthenticationMD5Password
          this.sendBytes(
            frontend.passwordMessage(md5Password(this.#user, password, message.body.subarray(4, 8))),
          );
          break;
        case 10: { // AuthenticationSASL
          const mechanisms = saslMechanisms(message.body.subarray(4));
          if (!mechanisms.includes(SCRAM_SHA_256)) {
            throw new Error(`server offers no ${SCRAM_SHA_256} (got ${mechanisms.join(", ")})`);
          }
          scram = new PasswordScramClient({ password });
          this.sendBytes(frontend.saslInitialResponse(SCRAM_SHA_256, scram.clientFirst()));
          break;
        }
        case 11: // AuthenticationSASLContinue
          if (scram === undefined) throw new Error("SASLContinue before SASL");
          this.sendBytes(frontend.saslResponse(scram.clientFinal(message.body.subarray(4))));
          break;
        case 12: // AuthenticationSASLFinal
          if (scram === undefined) throw new Error("SASLFinal before SASL");
          scram.verifyServerFinal(message.body.subarray(4));
          break;
        default:
          throw new Error(`unsupported authentication request ${code}`);
      }
    }
  }

  /** Simple Query ('Q'). */
  query(sql: string): void {
    this.sendBytes(frontend.query(sql));
  }

  /** Parse ('P'). */
  parse(name: string, sql: string, paramTypes: readonly number[] = []): void {
    this.sendBytes(frontend.parse(name, sql, paramTypes));
  }

  /** Bind ('B') with text parameters. */
  bind(portal: string, statement: string, params: readonly (string | null)[]): void {
    this.sendBytes(frontend.bind(portal, statement, params));
  }

  /** Describe ('D'). */
  describe(kind: "S" | "P", name: string): void {
    this.sendBytes(frontend.describe(kind, name));
  }

  /** Execute ('E'); maxRows 0 = all. */
  execute(portal: string, maxRows = 0): void {
    this.sendBytes(frontend.execute(portal, maxRows));
  }

  /** Close ('C') of a statement or portal (not the connection; see {@link close}). */
  closeStatement(kind: "S" | "P", name: string): void {
    this.sendBytes(frontend.close(kind, name));
  }

  /** Sync ('S'). */
  sync(): void {
    this.sendBytes(frontend.sync());
  }

  /** Flush ('H'). */
  flush(): void {
    this.sendBytes(frontend.flush());
  }

  /** Terminate ('X'); the server then closes the connection. */
  terminate(): void {
    this.sendBytes(frontend.terminate());
  }

  /** Next complete backend message. */
  async readMessage(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<BackendMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = splitFrame(this.#pending.view());
      if (frame !== undefined) {
        this.#pending.skip(frame.next);
        return frame.message;
      }
      await this.#waitForData(deadline, "a backend message");
    }
  }

  /** Exactly `count` raw bytes (e.g. the 'S'/'N' answer to SSLRequest). */
  async readBytes(count: number, timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (this.#pending.length < count) await this.#waitForData(deadline, `${count} bytes`);
    return this.#pending.take(count);
  }

  /**
   * Reads an Authentication ('R') message with this code and returns what follows the code; throws
   * {@link BackendError} on an ErrorResponse.
   */
  async expectAuth(code: number, timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<Uint8Array> {
    const message = await this.readMessage(timeoutMs);
    if (message.type === "E") throw new BackendError(errorFields(message.body), [message]);
    if (message.type !== "R" || authCode(message.body) !== code) {
      const got = message.type === "R" ? `R ${authCode(message.body)}` : message.type;
      throw new Error(`expected Authentication ${code}, got ${got}`);
    }
    return message.body.subarray(4);
  }

  /** Messages up to and including the next ReadyForQuery ('Z'). */
  async readUntilReady(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    const messages: BackendMessage[] = [];
    for (;;) {
      let message: BackendMessage;
      try {
        message = await this.readMessage(Math.max(0, deadline - Date.now()));
      } catch (err) {
        const seen = messages.map((m) => m.type).join("") || "nothing";
        throw new Error(`${(err as Error).message} (waiting for ReadyForQuery; got ${seen})`, { cause: err });
      }
      messages.push(message);
      if (message.type === "Z") return messages;
    }
  }

  /** Waits for the server to close the connection and returns all bytes not yet consumed. */
  async readRawUntilClose(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      if (Date.now() >= deadline) throw new Error(`connection still open after ${timeoutMs} ms`);
      await this.#waitForData(deadline, "connection close", true);
    }
    return this.#pending.take(this.#pending.length);
  }

  /** Half-closes, then waits (up to 2 s) for the close before destroying the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#socket.end();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000)));
    await Promise.race([this.#closedPromise, timeout]);
    clearTimeout(timer);
    if (!this.#closed) {
      this.#socket.destroy();
      await this.#closedPromise;
    }
  }

  /** Resolves on the next data/close/error event; rejects on deadline, or on close unless `closeOk`. */
  #waitForData(deadline: number, what: string, closeOk = false): Promise<void> {
    if (this.#error !== undefined && !closeOk) return Promise.reject(this.#error);
    if (this.#closed) {
      if (closeOk) return Promise.resolve();
      return Promise.reject(
        new Error(`connection closed while waiting for ${what} (${this.#pending.length} unread bytes)`),
      );
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) return Promise.reject(new Error(`timed out waiting for ${what}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        reject(new Error(`timed out waiting for ${what}`));
      }, remaining);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** "md5" + md5hex(md5hex(password + user) + salt). */
function md5Password(user: string, password: string, salt: Uint8Array): string {
  const inner = createHash("md5").update(password + user).digest("hex");
  return "md5" + createHash("md5").update(inner).update(salt).digest("hex");
}


const concat = concatBytes;
