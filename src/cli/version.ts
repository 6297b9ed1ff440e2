/**
 * What `pgrelay --version` prints: the version, the runtime it runs on and the commit it was built from.
 * Release builds (scripts/release.sh) inject the version and commit with `bun build --define`; run from a
 * checkout (`deno run`, `bun mod.ts`) the version is package.json's and the commit is "dev".
 */
import packageJson from "../../package.json" with { type: "json" };

// Replaced by `bun build --define PGRELAY_BUILD_VERSION='"x.y.z"'`; an undeclared global otherwise, which
// `typeof` reads as "undefined" without throwing.
declare const PGRELAY_BUILD_VERSION: string;
declare const PGRELAY_BUILD_COMMIT: string;

/** pgrelay's version: the release's, or package.json's. */
export const VERSION: string = typeof PGRELAY_BUILD_VERSION === "string" ? PGRELAY_BUILD_VERSION : packageJson.version;
/** The git commit the binary was built from; "dev" when run from a checkout. */
export const BUILD_COMMIT: string = typeof PGRELAY_BUILD_COMMIT === "string" ? PGRELAY_BUILD_COMMIT : "dev";

/** "deno 2.9.6" or "bun 1.4.5": the runtime this process runs on. */
export function runtimeVersion(): string {
  const bun = (globalThis as { Bun?: { version: string } }).Bun;
  if (bun !== undefined) return `bun ${bun.version}`;
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  if (deno !== undefined) return `deno ${deno.version.deno}`;
  return "unknown runtime";
}

/** The `--version` line: "pgrelay 0.1.0 (bun 1.4.5, commit 66252bf)". */
export function versionLine(): string {
  return `pgrelay ${VERSION} (${runtimeVersion()}, commit ${BUILD_COMMIT})`;
}
