/** What a fuzz target is: seeds, mutation hints and one property check per input. */
import type { Prng } from "./prng.ts";

export interface FuzzTarget {
  readonly name: string;
  /** Bytes per input (mutations are cut to this). */
  readonly maxLength: number;
  /** Tokens the mutator inserts whole. */
  readonly dictionary: readonly string[];
  /** Makes an input from scratch instead of mutating a seed (the share of such inputs: `generateShare`). */
  generate?(rng: Prng): Uint8Array;
  readonly generateShare?: number;
  /** Runs one input and checks the target's properties; throws (anything) on a failure. */
  run(input: Uint8Array): void | Promise<void>;
}

/** A broken property. Anything else escaping `run` is an unexpected exception, also a failure. */
export class FuzzFailure extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FuzzFailure";
  }
}

export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new FuzzFailure(message);
}

/** Rethrows `error` as a failure unless `allowed` says it is one of the module's documented errors. */
export function onlyDocumented(error: unknown, allowed: (error: unknown) => boolean, what: string): void {
  if (allowed(error)) return;
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  throw new FuzzFailure(`${what} threw an undocumented exception: ${detail}`, { cause: error });
}
