/** Picks the adapter for the runtime this process runs on. */
import type { RuntimeAdapter } from "../core/socket.ts";
import { bunAdapter } from "./bun.ts";
import { denoAdapter } from "./deno.ts";

export type RuntimeName = RuntimeAdapter["name"];

export function currentRuntime(): RuntimeName {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  throw new Error("pgrelay runs on Deno or Bun; this runtime is neither (run it with `deno run -A` or `bun`)");
}

export function adapterFor(runtime: RuntimeName = currentRuntime()): RuntimeAdapter {
  return runtime === "bun" ? bunAdapter : denoAdapter;
}
