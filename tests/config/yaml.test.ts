import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { configLayerFromYaml } from "../../src/config/load.ts";
import { formatIssue } from "../../src/config/config_error.ts";

describe("configLayerFromYaml() (found by make fuzz)", () => {
  it("reports an alias without its anchor as a syntax issue instead of throwing ReferenceError", () => {
    const read = configLayerFromYaml("listen: *nowhere\nupstream: db:5432\n", "alias.yaml");
    assert.equal(read.layer, undefined);
    assert.equal(read.issues.length, 1);
    assert.match(formatIssue(read.issues[0]!), /^alias\.yaml: \(syntax\): Unresolved alias .*nowhere/);
  });

  it("reports an alias bomb (more than 100 aliases) as a syntax issue", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 12; i++) {
      lines.push(
        `${"b".repeat(i + 1)}: &b${i} [${Array(10).fill(i === 0 ? "*a" : `*b${i - 1}`).join(", ")}]`,
      );
    }
    const read = configLayerFromYaml(lines.join("\n") + "\n", "bomb.yaml");
    assert.equal(read.layer, undefined);
    assert.match(formatIssue(read.issues[0]!), /^bomb\.yaml: \(syntax\): /);
  });
});
