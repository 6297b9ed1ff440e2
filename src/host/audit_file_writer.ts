/**
 * The audit log's writer: appends to a file (reopened by name on SIGHUP, for logrotate) or to stdout.
 * Writes are serialized; the audit log above keeps the relay from ever waiting on them.
 */
import { type FileHandle, mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import process from "node:process";
import type { AuditWriter } from "../audit/audit_writer.ts";

export async function openAuditWriter(path: string): Promise<AuditWriter> {
  if (path === "-") return new StdoutWriter();
  const writer = new FileWriter(path);
  await writer.reopen();
  return writer;
}

class StdoutWriter implements AuditWriter {
  async write(chunks: readonly Uint8Array[]): Promise<void> {
    for (const chunk of chunks) {
      await new Promise<void>((resolve, reject) => {
        process.stdout.write(chunk, (error) => error ? reject(error) : resolve());
      });
    }
  }
  reopen(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class FileWriter implements AuditWriter {
  readonly #path: string;
  #handle: FileHandle | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
  }

  write(chunks: readonly Uint8Array[]): Promise<void> {
    return this.#serialize(async () => {
      const handle = this.#handle;
      if (!handle) throw new Error(`audit file "${this.#path}" is not open`);
      for (const chunk of chunks) {
        // A write may take less than it was given (a full disk takes some, then fails): go on from there.
        for (let at = 0; at < chunk.length;) {
          const { bytesWritten } = await handle.write(chunk, at, chunk.length - at);
          if (bytesWritten <= 0) throw new Error(`audit file "${this.#path}" took no bytes`);
          at += bytesWritten;
        }
      }
    });
  }

  /** Opens the path again (creating it), so lines go to the new file after logrotate renamed the old one. */
  reopen(): Promise<void> {
    return this.#serialize(async () => {
      const old = this.#handle;
      await mkdir(dirname(this.#path), { recursive: true });
      this.#handle = await open(this.#path, "a", 0o640);
      await old?.close();
    });
  }

  close(): Promise<void> {
    return this.#serialize(async () => {
      await this.#handle?.close();
      this.#handle = undefined;
    });
  }

  #serialize(step: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(step);
    this.#chain = next.catch(() => {});
    return next;
  }
}
