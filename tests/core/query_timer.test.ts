import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { QueryTimer } from "../../src/core/query_timer.ts";
import { MAX_TRACKED_REQUESTS } from "../../src/core/tracking_usage.ts";

const code = (letter: string) => letter.charCodeAt(0);

function run(frontend: string, backend: string, max?: number): { finished: number; outstanding: number; overflowed: number } {
  let finished = 0;
  let overflowed = 0;
  const timer = new QueryTimer(() => finished++, () => overflowed++, max);
  for (const letter of frontend) timer.frontend(code(letter));
  for (const letter of backend) timer.backend(code(letter));
  return { finished, outstanding: timer.outstanding, overflowed };
}

describe("QueryTimer", () => {
  it("times a simple query until its ReadyForQuery, whatever it returns before", () => {
    assert.deepEqual(run("Q", "TDDCCZ"), { finished: 1, outstanding: 0, overflowed: 0 });
  });

  it("times each pipelined Execute to its completion and pairs each Sync with a ReadyForQuery", () => {
    // Parse Bind Execute Bind Execute Sync, then a simple Query
    assert.deepEqual(run("PBEBESQ", "12C2CZ"), { finished: 2, outstanding: 1, overflowed: 0 });
    assert.deepEqual(run("PBEBESQ", "12C2CZTDCZ"), { finished: 3, outstanding: 0, overflowed: 0 });
  });

  it("drops Executes skipped after an error at their Sync", () => {
    // the first Execute fails; the second is skipped by the server until Sync
    assert.deepEqual(run("BEBES", "2EZ"), { finished: 1, outstanding: 0, overflowed: 0 });
  });

  it("counts PortalSuspended and EmptyQueryResponse as completions", () => {
    assert.deepEqual(run("EES", "sIZ"), { finished: 2, outstanding: 0, overflowed: 0 });
  });

  it("pairs a FunctionCall with its ReadyForQuery, untimed", () => {
    assert.deepEqual(run("FQ", "VZTDCZ"), { finished: 1, outstanding: 0, overflowed: 0 });
  });

  it("keeps order across the ring's wrap-around and growth", () => {
    let finished = 0;
    const timer = new QueryTimer(() => finished++);
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < round; i++) timer.frontend(code("E"));
      timer.frontend(code("S"));
      timer.frontend(code("Q"));
      for (let i = 0; i < round; i++) timer.backend(code("C"));
      timer.backend(code("Z"));
      assert.equal(timer.outstanding, 1, `round ${round}: the Query waits`);
      timer.backend(code("Z"));
      assert.equal(timer.outstanding, 0);
    }
    assert.equal(finished, (49 * 50) / 2 + 50);
  });

  it("times at most `max` requests; the rest are counted, and timing resumes at the ReadyForQuery that answers them all", () => {
    // a failed Parse, 10 Executes, Sync: the server answers ErrorResponse and ReadyForQuery
    assert.deepEqual(run("P" + "E".repeat(10) + "S", "EZ", 4), { finished: 1, outstanding: 0, overflowed: 7 });
    // two Syncs past the bound: the first ReadyForQuery does not end the overflow, the second does
    let finished = 0;
    let overflowed = 0;
    const timer = new QueryTimer(() => finished++, () => overflowed++, 2);
    for (const letter of "ESESQ") timer.frontend(code(letter));
    assert.deepEqual([timer.outstanding, overflowed, timer.peakEntries], [2, 3, 2]);
    for (const letter of "CZ") timer.backend(code(letter));
    assert.equal(timer.outstanding, 1, "nothing timed is left, but the untracked Sync and Query wait");
    timer.frontend(code("Q")); // still past the bound: an answer is owed to an untracked request
    assert.equal(overflowed, 4);
    for (const letter of "CZ" + "TCZ" + "TCZ") timer.backend(code(letter));
    assert.equal(timer.outstanding, 0);
    timer.frontend(code("Q"));
    assert.equal(timer.outstanding, 1, "tracked again");
    timer.backend(code("Z"));
    assert.equal(finished, 2, "the first Execute and the Query after the overflow");
  });

  it("is O(1) per frame: 1,000,000 pipelined Executes and a Sync take well under a second", () => {
    let overflowed = 0;
    const timer = new QueryTimer(() => {}, () => overflowed++);
    const started = performance.now();
    for (let i = 0; i < 1_000_000; i++) timer.frontend(code("E"));
    timer.frontend(code("S"));
    timer.backend(code("E"));
    timer.backend(code("Z"));
    const elapsed = performance.now() - started;
    assert.equal(timer.outstanding, 0);
    assert.equal(timer.peakEntries, MAX_TRACKED_REQUESTS);
    assert.equal(overflowed, 1_000_001 - MAX_TRACKED_REQUESTS);
    assert.ok(timer.bytes <= MAX_TRACKED_REQUESTS * 9, `${timer.bytes} bytes`);
    assert.ok(elapsed < 1000, `${elapsed.toFixed(0)} ms`);
  });
});
