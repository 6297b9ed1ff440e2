/**
 * `make fuzz`: mutation-based fuzzing of pgrelay's parsers (tests/fuzz/targets/). Settings from the
 * environment: FUZZ_RUNS (inputs per target, default 1000000), FUZZ_SEED (default: random, printed),
 * FUZZ_TARGETS (comma-separated names, default all). Failing inputs are saved under tests/fuzz/crashes/;
 * tests/fuzz/fuzz_sample.test.ts replays every saved one, and so does `scripts/fuzz.ts --replay [FILE...]`.
 * Prints `fuzz TARGET: N inputs, F failures` per target and `fuzz: N inputs, F failures` last; exits 1 on
 * any failure.
 */
import process from "node:process";
import { CRASH_DIR, fuzz, replay, savedCases } from "../tests/fuzz/engine.ts";
import { TARGETS } from "../tests/fuzz/targets/mod.ts";
import { readFileSync } from "node:fs";
import { basename } from "node:path";

const args = process.argv.slice(2);
if (args[0] === "--replay") {
  const files = args.slice(1);
  const cases = files.length === 0 ? savedCases() : files.map((file) =>
    [
      basename(file).slice(0, basename(file).lastIndexOf("-")),
      file,
      new Uint8Array(readFileSync(file)),
    ] as const
  );
  let failures = 0;
  for (const [name, file, input] of cases) {
    const target = TARGETS.find((t) => t.name === name);
    const problem = target ? await replay(target, input) : `no target named ${name}`;
    if (problem) failures++;
    console.log(`${file}: ${problem ?? "passes"}`);
  }
  console.log(`fuzz: ${cases.length} inputs, ${failures} failures`);
  process.exit(failures > 0 ? 1 : 0);
}

const runs = Number(process.env.FUZZ_RUNS ?? 1_000_000);
if (!Number.isInteger(runs) || runs < 0) {
  throw new RangeError(`FUZZ_RUNS must be a whole number, got ${process.env.FUZZ_RUNS}`);
}
const seed = process.env.FUZZ_SEED
  ? Number(process.env.FUZZ_SEED) >>> 0
  : (Math.random() * 0x1_0000_0000) >>> 0;
const wanted = process.env.FUZZ_TARGETS?.split(",").map((name) => name.trim()).filter((name) => name !== "");
const targets = wanted ? TARGETS.filter((t) => wanted.includes(t.name)) : TARGETS;
if (wanted && targets.length !== wanted.length) {
  throw new RangeError(`unknown FUZZ_TARGETS; known: ${TARGETS.map((t) => t.name).join(", ")}`);
}
const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";
console.log(`fuzz: seed ${seed} (FUZZ_SEED=${seed} repeats this run), ${runs} inputs per target, ${runtime}`);
let inputs = 0;
let failures = 0;
const started = performance.now();
for (const target of targets) {
  const report = await fuzz(target, { runs, seed, crashDir: CRASH_DIR, log: (line) => console.log(line) });
  inputs += report.inputs;
  failures += report.failures;
  const rate = Math.round(report.inputs / (report.ms / 1000));
  console.log(`fuzz ${target.name}: ${report.inputs} inputs, ${report.failures} failures`);
  console.log(`  ${(report.ms / 1000).toFixed(1)} s, ${rate} inputs/s`);
  for (const error of report.errors) console.log(`  ${error}`);
}
console.log(`fuzz: total ${((performance.now() - started) / 1000).toFixed(1)} s`);
console.log(`fuzz: ${inputs} inputs, ${failures} failures`);
process.exit(failures > 0 ? 1 : 0);
