/** An AuditWriter that keeps what it is given in memory, as text (for audit tests). */
import type { AuditWriter } from "../../src/audit/audit_writer.ts";

/** The text of byte chunks handed to an AuditWriter. */
export const textOf = (chunks: readonly Uint8Array[]): string =>
  chunks.map((chunk) => new TextDecoder().decode(chunk)).join("");

export class MemoryAuditWriter implements AuditWriter {
  text = "";
  /** While set, writes wait on it (a slow disk). */
  gate: Promise<void> | undefined;

  async write(chunks: readonly Uint8Array[]): Promise<void> {
    const text = textOf(chunks); // read now: the chunks are reused once this resolves
    await this.gate;
    this.text += text;
  }
  reopen(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  /** The lines written so far. */
  get lines(): string[] {
    return this.text.split("\n").filter((line) => line !== "");
  }
  events(): Array<Record<string, any>> {
    return this.lines.map((line) => JSON.parse(line));
  }
}
