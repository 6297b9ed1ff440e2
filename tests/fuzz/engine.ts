/**
 * Runs fuzz targets: each seed once, then mutated seeds (and generated inputs where a target makes them),
 * with a seeded PRNG. A failing input is saved as `<dir>/<target>-<hash>.bin`, which `replay` runs again.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fnv1a, Prng } from "./prng.ts";
import { dictionaryOf, mutate } from "./mutate.ts";
import type { FuzzTarget } from "./target.ts";

export const SEED_DIR = new URL("./seeds/", import.meta.url).pathname;
export const CRASH_DIR = new URL("./crashes/", import.meta.url).pathname;

export interface FuzzOptions {
  runs: number;
  seed: number;
  /** Where failing inputs are saved (none: not saved). */
  crashDir?: string;
  /** Failing inputs saved per target at most. */
  maxSaved?: number;
  log?: (line: string) => void;
}

export interface FuzzReport {
  target: string;
  inputs: number;
  failures: number;
  /** Files written for failing inputs. */
  saved: string[];
  /** The first failures' messages. */
  errors: string[];
  ms: number;
}

/** The committed seed corpus of a target: every file under seeds/<target>/. */
export function loadSeeds(name: string): Uint8Array[] {
  const dir = join(SEED_DIR, name);
  let files: string[];
  try {
    files = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return files.map((file) => new Uint8Array(readFileSync(join(dir, file))));
}

const describeError = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 500) : String(error).slice(0, 500);

export async function fuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const rng = new Prng(options.seed ^ fnv1a(new TextEncoder().encode(target.name)));
  const seeds = loadSeeds(target.name);
  if (seeds.length === 0 && !target.generate) {
    throw new Error(`fuzz ${target.name}: no seeds under ${SEED_DIR}`);
  }
  const context = { seeds, dictionary: dictionaryOf(target.dictionary), maxLength: target.maxLength };
  const report: FuzzReport = { target: target.name, inputs: 0, failures: 0, saved: [], errors: [], ms: 0 };
  const generateShare = seeds.length === 0 ? 1 : target.generate ? target.generateShare ?? 0.5 : 0;
  // The yaml package warns (process.emitWarning) about odd keys a mutated document has; not a finding.
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {};
  try {
    await runInputs();
  } finally {
    process.emitWarning = emitWarning;
  }
  report.ms = performance.now() - started;
  return report;

  async function runInputs(): Promise<void> {
    for (let i = 0; i < options.runs; i++) {
      let input: Uint8Array;
      if (i < seeds.length) input = seeds[i]!;
      else if (generateShare > 0 && rng.chance(generateShare)) input = target.generate!(rng);
      else input = mutate(rng.pick(seeds), rng, context);
      report.inputs++;
      try {
        const result = target.run(input);
        if (result) await result;
      } catch (error) {
        report.failures++;
        if (report.errors.length < 5) report.errors.push(describeError(error));
        if (options.crashDir && report.saved.length < (options.maxSaved ?? 5)) {
          mkdirSync(options.crashDir, { recursive: true });
          const file = join(
            options.crashDir,
            `${target.name}-${fnv1a(input).toString(16).padStart(8, "0")}.bin`,
          );
          writeFileSync(file, input);
          report.saved.push(file);
          options.log?.(`fuzz ${target.name}: failure saved to ${file}: ${describeError(error)}`);
        }
      }
    }
  }
}

/** Saved failing inputs: [target name, file, bytes] for every `<target>-<hash>.bin` in `dir`. */
export function savedCases(dir = CRASH_DIR): Array<[string, string, Uint8Array]> {
  let files: string[];
  try {
    files = readdirSync(dir).filter((file) => file.endsWith(".bin")).sort();
  } catch {
    return [];
  }
  return files.map((file) => [
    file.slice(0, file.lastIndexOf("-")),
    join(dir, file),
    new Uint8Array(readFileSync(join(dir, file))),
  ]);
}

/** Runs one saved input again; resolves to the failure message, or undefined when it passes now. */
export async function replay(target: FuzzTarget, input: Uint8Array): Promise<string | undefined> {
  try {
    const result = target.run(input);
    if (result) await result;
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}
