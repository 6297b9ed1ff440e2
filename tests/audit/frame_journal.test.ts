import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FrameJournal, type FrameReader } from "../../src/audit/frame_journal.ts";

/** Wall-clock times the readers saw for frontend bodies. */
const walls: number[] = [];

/** A reader that records what it is handed and on which clock. */
function recorder(journal: FrameJournal, name: string, seen: string[]): FrameReader {
  const text = (body: Uint8Array) => new TextDecoder().decode(body);
  return {
    frontend: (type, body, truncated) => {
      seen.push(`${name} F${type} ${text(body)}${truncated ? " (cut)" : ""} @${journal.now()}`);
      walls.push(journal.wallClock());
    },
    backendFrame: (type) => seen.push(`${name} f${type} @${journal.now()}`),
    backend: (type, body) => seen.push(`${name} B${type} ${text(body)} @${journal.now()}`),
  };
}

describe("FrameJournal", () => {
  it("hands notes to their readers in order, with copies of the bodies, on the clock of each note", async () => {
    let scheduled = 0;
    const journal = new FrameJournal(() => scheduled++);
    const seen: string[] = [];
    const a = recorder(journal, "a", seen);
    const b = recorder(journal, "b", seen);
    const body = new TextEncoder().encode("select 1");
    const t0 = performance.now();
    const wall0 = Date.now();
    journal.frontend(a, 81, body, false);
    body.fill(0x21); // the relay reuses its buffer: the note must hold its own copy
    await new Promise((resolve) => setTimeout(resolve, 5));
    journal.frontend(b, 81, new TextEncoder().encode("select 2"), true);
    journal.backend(a, 67, new TextEncoder().encode("SELECT 1"));
    journal.backendFrame(a, 90);
    const t1 = performance.now();
    assert.equal(seen.length, 0, "nothing is read before replay");
    assert.equal(scheduled, 1, "one replay asked for per batch");
    assert.equal(journal.size, 4);
    journal.replay();
    assert.equal(journal.size, 0);
    assert.deepEqual(seen.map((line) => line.replace(/ @.*/, "")), [
      "a F81 select 1",
      "b F81 select 2 (cut)",
      "a B67 SELECT 1",
      "a f90",
    ]);
    const times = seen.map((line) => Number(line.split("@")[1]));
    assert.ok(times[0]! >= t0 && times[3]! <= t1, "each note keeps the time it was taken");
    assert.ok(times[1]! - times[0]! >= 4, "a note 5 ms later replays 5 ms later");
    assert.ok(walls[0]! >= wall0 - 1 && walls[0]! <= wall0 + 3, `the wall clock of a note is when it was taken (${walls[0]} vs ${wall0})`);
    assert.ok(walls[1]! - walls[0]! >= 4, "and moves with it");
    assert.ok(journal.now() >= t1, "outside a replay the clock is now");
    journal.backendFrame(a, 90);
    assert.equal(scheduled, 2, "the next batch asks again");
  });

  it("replays by itself when full, and reads a body too big to note at once, after the notes before it", () => {
    const journal = new FrameJournal(() => {});
    const seen: string[] = [];
    const a = recorder(journal, "a", seen);
    for (let i = 0; i < 8192; i++) journal.backendFrame(a, 90);
    assert.equal(seen.length, 0);
    journal.backendFrame(a, 73);
    assert.equal(seen.length, 8192, "the full journal was replayed before the next note");
    assert.equal(journal.size, 1);
    journal.frontend(a, 81, new Uint8Array(600 * 1024).fill(0x78), false);
    assert.equal(seen.length, 8194, "the note before it, then the big body");
    assert.match(seen.at(-2)!, /^a f73 /);
    assert.match(seen.at(-1)!, /^a F81 x{614400} @/);
    assert.equal(journal.size, 0);
  });
});
