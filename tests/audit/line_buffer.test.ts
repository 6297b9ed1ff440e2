import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LineBuffer } from "../../src/audit/line_buffer.ts";
import { textOf as text } from "../support/memory_audit_writer.ts";

describe("LineBuffer", () => {
  it("holds lines as UTF-8 with newlines, across chunk boundaries, and counts them", () => {
    const buffer = new LineBuffer();
    const lines = Array.from({ length: 3000 }, (_, i) => `{"n":${i},"text":"ünïcødé 😀 ${"x".repeat(i % 97)}"}`);
    for (const line of lines) buffer.append(line);
    assert.equal(buffer.lines, 3000);
    assert.equal(buffer.bytes, new TextEncoder().encode(lines.join("\n") + "\n").length);
    const taken = buffer.take();
    assert.ok(taken.chunks.length > 1, "more than one 64 KiB chunk");
    assert.equal(taken.lines, 3000);
    assert.equal(text(taken.chunks), lines.join("\n") + "\n");
    assert.equal(buffer.lines, 0);
    assert.equal(buffer.bytes, 0);
    assert.deepEqual(buffer.take().chunks, []);
  });

  it("takes a line longer than a chunk whole", () => {
    const buffer = new LineBuffer();
    const long = "é".repeat(100_000);
    buffer.append("first");
    buffer.append(long);
    buffer.append("last");
    assert.equal(text(buffer.take().chunks), `first\n${long}\nlast\n`);
  });

  it("does not touch bytes handed over until they are recycled, then reuses them", () => {
    const buffer = new LineBuffer();
    buffer.append("a".repeat(1000));
    const first = buffer.take();
    const before = text(first.chunks);
    for (let i = 0; i < 200; i++) buffer.append("b".repeat(1000));
    assert.equal(text(first.chunks), before, "later lines did not overwrite a batch being written");
    buffer.recycle(first.chunks);
    const second = buffer.take();
    buffer.append("c");
    const reused = buffer.take().chunks[0]!;
    assert.equal(reused.buffer, first.chunks[0]!.buffer, "the written chunk came back into use");
    assert.equal(text([reused]), "c\n");
    assert.equal(text(second.chunks), ("b".repeat(1000) + "\n").repeat(200));
  });
});
