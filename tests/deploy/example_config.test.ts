/** deploy/pgrelay.yaml, the config `make install` puts in /etc/pgrelay: valid, and every key explained. */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { PROJECT_ROOT, runPgrelay } from "../support/pgrelay.ts";

const EXAMPLE = join(PROJECT_ROOT, "deploy", "pgrelay.yaml");

describe("deploy/pgrelay.yaml", () => {
  it("passes pgrelay --check (exit 0)", async () => {
    const result = await runPgrelay(["--config", EXAMPLE, "--check"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "pgrelay: config OK: listen 127.0.0.1:6432, upstream 127.0.0.1:5432, policy 0 rules (default allow), audit off");
  });

  it("has a comment for every key", async () => {
    const lines = (await readFile(EXAMPLE, "utf8")).split("\n");
    const keys = lines.flatMap((line, index) => {
      const key = /^([a-z_]+):/.exec(line)?.[1];
      return key === undefined ? [] : [{ key, index }];
    });
    assert.ok(keys.length >= 6, `keys: ${keys.map((k) => k.key).join(", ")}`);
    for (const { key, index } of keys) {
      assert.ok(lines[index - 1]?.startsWith("#") || lines[index]!.includes(" #"), `${key} has a comment`);
    }
  });
});
