/**
 * The command line that starts another copy of this program (a worker), however it was started:
 * `deno run mod.ts`, `bun mod.ts`, or a single binary from `deno compile` / `bun build --compile`.
 */
import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

export function selfCommand(args: readonly string[]): [string, string[]] {
  if ("Deno" in globalThis) {
    const main = Deno.mainModule;
    const script = main.startsWith("file:") ? fileURLToPath(main) : "";
    // A compiled binary's main module is not a file on disk; `deno run` needs the script and flags again.
    if (script !== "" && existsSync(script) && !isCompiledDeno(script)) {
      return [Deno.execPath(), ["run", "-A", "--unstable-net", script, ...args]];
    }
    return [Deno.execPath(), [...args]];
  }
  const script = process.argv[1] ?? "";
  if (script.startsWith("/$bunfs/") || script === "" || !existsSync(script)) return [process.execPath, [...args]];
  return [process.execPath, [script, ...args]];
}

function isCompiledDeno(script: string): boolean {
  return script.includes("/deno-compile-");
}
