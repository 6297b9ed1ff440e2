/**
 * The man pages and the README's generated blocks against the tables they come from (src/cli/options.ts,
 * src/host/config_keys.ts): regenerated here, they must equal what is committed, so a table changed without
 * `make docs`, or a hand edit of generated text, fails. `--help` from a running pgrelay (this runtime) is
 * compared with the same tables.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MAN_PAGES, readmeBlocks, renderReadme, roff } from "../../scripts/gen_man.ts";
import { CLI_OPTIONS } from "../../src/cli/options.ts";
import { CONFIG_KEYS } from "../../src/host/config_keys.ts";
import { PROJECT_ROOT, runPgrelay } from "../support/pgrelay.ts";
import { runProcess } from "../support/process.ts";

const FIX = "run `make docs` (bun scripts/gen_man.ts --write) and commit the result";

/** Passes when `actual` is `expected`; otherwise fails naming the first line that differs, not the whole file. */
function sameText(actual: string, expected: string, what: string): void {
  if (actual === expected) return;
  const a = actual.split("\n");
  const e = expected.split("\n");
  const at = a.findIndex((line, i) => line !== e[i]);
  const line = at < 0 ? a.length : at;
  assert.fail(`${what} is stale at line ${line + 1}: ${FIX}\n  committed: ${JSON.stringify(a[line])}\n  generated: ${JSON.stringify(e[line])}`);
}

describe("docs: README, man pages and --help come from one source", () => {
  it("README.md's generated blocks are what gen_man.ts makes of the tables", async () => {
    const readme = await readFile(join(PROJECT_ROOT, "README.md"), "utf8");
    sameText(readme, renderReadme(readme), "README.md");
    for (const block of Object.values(readmeBlocks())) assert.ok(readme.includes(block));
  });

  for (const [name, page] of Object.entries(MAN_PAGES)) {
    it(`deploy/man/${name} is what gen_man.ts makes of the tables`, async () => {
      sameText(await readFile(join(PROJECT_ROOT, "deploy", "man", name), "utf8"), page(), `deploy/man/${name}`);
    });

    it(`deploy/man/${name} renders without a groff warning`, async () => {
      const result = await runProcess("groff", ["-man", "-Tutf8", "-ww", "-z", join(PROJECT_ROOT, "deploy", "man", name)]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
    });
  }

  it("pgrelay(1) has every flag and pgrelay.yaml(5) every key, nested ones with their path", () => {
    const page1 = MAN_PAGES["pgrelay.1"]();
    for (const option of CLI_OPTIONS) assert.ok(page1.includes(`\\fB${roff(`--${option.flag}`)}\\fR`), `--${option.flag}`);
    const page5 = MAN_PAGES["pgrelay.yaml.5"]();
    for (const key of Object.keys(CONFIG_KEYS)) assert.ok(page5.includes(`.TP\n\\fB${roff(key)}\\fR:`), key);
    assert.ok(page5.includes(`\\fB${roff("clusters.NAME.health.interval")}\\fR`));
    assert.ok(page5.includes(`\\fB${roff("routes[].target")}\\fR`));
  });

  it("pgrelay --help (this runtime) lists every flag of the table as the README shows it, and every config key", async () => {
    const result = await runPgrelay(["--help"]);
    assert.equal(result.code, 0, result.stderr);
    const readme = await readFile(join(PROJECT_ROOT, "README.md"), "utf8");
    const block = /<!-- generated: cli-options[^\n]*\n```\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(block !== undefined, "README.md has the cli-options block");
    for (const line of block.split("\n").filter((l) => l.startsWith("  "))) assert.ok(result.stdout.includes(`${line}\n`), `--help has: ${line}`);
    for (const option of CLI_OPTIONS) assert.match(result.stdout, new RegExp(`^ {2}(-\\w, | {4})--${option.flag}\\b`, "m"));
    const keys = result.stdout.slice(result.stdout.indexOf("Config file keys:")).replaceAll("\n", " ");
    for (const key of Object.keys(CONFIG_KEYS)) assert.match(keys, new RegExp(`\\b${key}\\b`), `--help names the config key ${key}`);
  });
});
