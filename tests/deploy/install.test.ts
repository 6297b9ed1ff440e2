/**
 * `make install DESTDIR=...`: what lands where, the ExecStart rewrite for another PREFIX, and an existing
 * /etc/pgrelay/pgrelay.yaml left alone. A stub stands in for the binary (PGRELAY_BINARY), so nothing is
 * built; with DESTDIR set the target creates no user.
 */
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { PROJECT_ROOT } from "../support/pgrelay.ts";
import { type ProcessResult, runProcess } from "../support/process.ts";

describe("make install", () => {
  let dir = "";
  let stub = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-install-"));
    stub = join(dir, "pgrelay-stub");
    await writeFile(stub, "#!/bin/sh\necho stub\n");
    await chmod(stub, 0o755);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const makeInstall = (destdir: string, ...vars: string[]): Promise<ProcessResult> =>
    runProcess("make", ["-s", "--no-print-directory", "-C", PROJECT_ROOT, "install", `DESTDIR=${destdir}`, `PGRELAY_BINARY=${stub}`, ...vars]);
  const mode = async (path: string): Promise<string> => ((await stat(path)).mode & 0o777).toString(8);

  it("PREFIX=/usr/local: binary, unit, sysusers entry and config", async () => {
    const root = join(dir, "local");
    const result = await makeInstall(root);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await mode(join(root, "usr/local/bin/pgrelay")), "755");
    assert.equal(await readFile(join(root, "usr/local/bin/pgrelay"), "utf8"), await readFile(stub, "utf8"));
    const unit = join(root, "usr/local/lib/systemd/system/pgrelay.service");
    assert.equal(await mode(unit), "644");
    assert.equal(await readFile(unit, "utf8"), await readFile(join(PROJECT_ROOT, "deploy/pgrelay.service"), "utf8"));
    assert.match(await readFile(join(root, "usr/local/lib/sysusers.d/pgrelay.conf"), "utf8"), /^u pgrelay /m);
    assert.equal(
      await readFile(join(root, "etc/pgrelay/pgrelay.yaml"), "utf8"),
      await readFile(join(PROJECT_ROOT, "deploy/pgrelay.yaml"), "utf8"),
    );
  });

  it("PREFIX=/usr: the unit goes to /lib/systemd/system and starts /usr/bin/pgrelay", async () => {
    const root = join(dir, "usr");
    const result = await makeInstall(root, "PREFIX=/usr");
    assert.equal(result.code, 0, result.stderr);
    await stat(join(root, "usr/bin/pgrelay"));
    const unit = await readFile(join(root, "lib/systemd/system/pgrelay.service"), "utf8");
    assert.match(unit, /^ExecStart=\/usr\/bin\/pgrelay --config \/etc\/pgrelay\/pgrelay.yaml$/m);
    assert.doesNotMatch(unit, /\/usr\/local\/bin/);
    await stat(join(root, "usr/lib/sysusers.d/pgrelay.conf"));
  });

  it("keeps an existing /etc/pgrelay/pgrelay.yaml", async () => {
    const root = join(dir, "again");
    assert.equal((await makeInstall(root)).code, 0);
    const config = join(root, "etc/pgrelay/pgrelay.yaml");
    await writeFile(config, "listen: 0.0.0.0:7432\n");
    const result = await makeInstall(root);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await readFile(config, "utf8"), "listen: 0.0.0.0:7432\n");
    assert.match(result.stdout, /keeping .*pgrelay\.yaml/);
  });

  it("without a binary it stops and says to build one", async () => {
    const result = await runProcess("make", ["-s", "-C", PROJECT_ROOT, "install", `DESTDIR=${join(dir, "none")}`, `PGRELAY_BINARY=${join(dir, "missing")}`]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /make build-bun/);
  });
});
