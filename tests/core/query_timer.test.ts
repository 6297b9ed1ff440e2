import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { QueryTimer } from "../../src/core/query_timer.ts";

const code = (letter: string) => letter.charCodeAt(0);

function run(frontend: string, backend: string): { finished: number; outstanding: number } {
  let finished = 0;
  const timer = new QueryTimer(() => finished++);
  for (const letter of frontend) timer.frontend(code(letter));
  for (const letter of backend) timer.backend(code(letter));
  return { finished, outstanding: timer.outstanding };
}

describe("QueryTimer", () => {
  it("times a simple query until its ReadyForQuery, whatever it returns before", () => {
    assert.deepEqual(run("Q", "TDDCCZ"), { finished: 1, outstanding: 0 });
  });

  it("times each pipelined Execute to its completion and pairs each Sync with a ReadyForQuery", () => {
    // Parse Bind Execute Bind Execute Sync, then a simple Query
    assert.deepEqual(run("PBEBESQ", "12C2CZ"), { finished: 2, outstanding: 1 });
    assert.deepEqual(run("PBEBESQ", "12C2CZTDCZ"), { finished: 3, outstanding: 0 });
  });

  it("drops Executes skipped after an error at their Sync", () => {
    // the first Execute fails; the second is skipped by the server until Sync
    assert.deepEqual(run("BEBES", "2EZ"), { finished: 1, outstanding: 0 });
  });

  it("counts PortalSuspended and EmptyQueryResponse as completions", () => {
    assert.deepEqual(run("EES", "sIZ"), { finished: 2, outstanding: 0 });
  });
});
