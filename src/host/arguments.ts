/** The program's own arguments, without the runtime and script path, on Deno, Bun and their binaries. */
import process from "node:process";

export function cliArguments(): string[] {
  if ("Deno" in globalThis) return [...Deno.args];
  return process.argv.slice(2);
}
