/**
 * CI's share of `make fuzz`: every target for a few thousand inputs (FUZZ_SAMPLE_RUNS, default 3000) from
 * a fixed seed, and every failing input saved under tests/fuzz/crashes/ replayed; all must pass.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import process from "node:process";
import { fuzz, replay, savedCases } from "./engine.ts";
import { TARGETS } from "./targets/mod.ts";

const RUNS = Number(process.env.FUZZ_SAMPLE_RUNS ?? 3000);
const SEED = 20_261_204;

describe("fuzz sample (make fuzz runs 1,000,000 inputs per target)", () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${RUNS} inputs without a failure`, async () => {
      const report = await fuzz(target, { runs: RUNS, seed: SEED });
      assert.equal(report.inputs, RUNS);
      assert.deepEqual(report.errors, [], `fuzz ${target.name}: seed ${SEED}, ${report.failures} failures`);
    });
  }

  it("every saved failing input passes now", async () => {
    for (const [name, file, input] of savedCases()) {
      const target = TARGETS.find((t) => t.name === name);
      assert.ok(target, `${file}: no target named ${name}`);
      assert.equal(await replay(target, input), undefined, file);
    }
  });
});
