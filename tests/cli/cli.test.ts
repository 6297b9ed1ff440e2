import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { PROJECT_ROOT, RUNTIME, runPgrelay, spawnPgrelay } from "../support/pgrelay.ts";

const PACKAGE_VERSION = (JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { version: string }).version;

describe("pgrelay command line", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-cli-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("--help prints usage with every flag and exits 0", async () => {
    const result = await runPgrelay(["--help"]);
    assert.equal(result.code, 0);
    for (const flag of ["--listen", "--upstream", "--config", "--check", "--version", "--log-level", "--startup-timeout"]) {
      assert.ok(result.stdout.includes(flag), `help mentions ${flag}`);
    }
  });

  it("--version prints package.json's version, the runtime it runs on and commit \"dev\" from a checkout", async () => {
    const result = await runPgrelay(["--version"]);
    assert.equal(result.code, 0);
    const runtime = RUNTIME === "bun" ? `bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}` : `deno ${Deno.version.deno}`;
    assert.equal(result.stdout, `pgrelay ${PACKAGE_VERSION} (${runtime}, commit dev)\n`);
  });

  it("an unknown flag gives one clear line and exit code 2, no stack trace", async () => {
    const result = await runPgrelay(["--listne", "x"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^pgrelay: Unknown option '--listne'/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  it("a bad flag value names the flag and exits 2", async () => {
    const result = await runPgrelay(["--upstream", "localhost"]);
    assert.equal(result.code, 2);
    assert.equal(result.stderr.trim(), 'pgrelay: --upstream: expected HOST:PORT such as 127.0.0.1:6432 or [::1]:6432, got "localhost"');
  });

  it("--check accepts a valid file, and flags override it", async () => {
    const file = join(dir, "good.yaml");
    await writeFile(file, "listen: 127.0.0.1:7432\nupstream: 127.0.0.1:5433\nstartup_timeout: 30s\n");
    const result = await runPgrelay(["--config", file, "--check", "--upstream", "10.0.0.5:5432"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "pgrelay: config OK: listen 127.0.0.1:7432, upstream 10.0.0.5:5432, policy 0 rules (default allow), audit off");
  });

  it("--check lists every error of a bad file with its line, exit 2", async () => {
    const file = join(dir, "bad.yaml");
    await writeFile(file, "# pgrelay\nlisten: 127.0.0.1\nupstream: 127.0.0.1:5432\nmax_message_size: huge\n");
    const result = await runPgrelay(["--config", file, "--check"]);
    assert.equal(result.code, 2);
    assert.deepEqual(result.stderr.trim().split("\n"), [
      `pgrelay: ${file}:2: listen: expected HOST:PORT such as 127.0.0.1:6432 or [::1]:6432, got "127.0.0.1"`,
      `pgrelay: ${file}:4: max_message_size: expected a size such as 65536, "64KiB", "10MB" or "1GiB", got "huge"`,
    ]);
  });

  it("a missing config file is named, exit 2", async () => {
    const result = await runPgrelay(["--config", join(dir, "nope.yaml")]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /cannot read ".*nope\.yaml": no such file/);
  });

  it("a listen address already in use is a clear runtime error, exit 1", async () => {
    const first = await spawnPgrelay(["--upstream", "127.0.0.1:1"]);
    try {
      const result = await runPgrelay(["--listen", `127.0.0.1:${first.address.port}`, "--upstream", "127.0.0.1:1"]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`^pgrelay: cannot listen on 127\\.0\\.0\\.1:${first.address.port}: `));
    } finally {
      assert.equal(await first.stop("SIGTERM"), 0, "SIGTERM exits 0");
    }
  });
});
