/**
 * auth.file can hold plaintext passwords: pgrelay refuses one that group or others can read (as libpq
 * refuses such a .pgpass), with the chmod that fixes it, at start, in --check (exit 2) and on SIGHUP
 * (the previous file stays in use).
 */
import assert from "node:assert/strict";
import { chmod, chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { formatScramVerifier } from "../../src/auth/scram_verifier.ts";
import { readSecretFile, secretFileProblem } from "../../src/host/secret_file.ts";
import { runPgrelay, spawnPgrelay } from "../support/pgrelay.ts";
import { BackendError, RawClient } from "../support/raw_client.ts";
import { waitFor } from "../support/wait.ts";

const isRoot = process.getuid?.() === 0;

describe("secretFileProblem()", () => {
  const file = (mode: number, uid = 1000) => ({ mode: 0o100000 | mode, uid, isFile: true });

  it("accepts u=rw or less, for any owner", () => {
    for (const mode of [0o600, 0o400, 0o700, 0o200, 0o000]) {
      assert.equal(secretFileProblem("/etc/u.txt", file(mode)), undefined, mode.toString(8));
      assert.equal(secretFileProblem("/etc/u.txt", file(mode, 0)), undefined, `${mode.toString(8)}, root`);
    }
  });

  it("refuses any group or other access with the chmod to run", () => {
    assert.equal(
      secretFileProblem("/etc/pgrelay/userlist.txt", file(0o644)),
      "others can access it (mode 0644), and it can hold passwords; run: chmod 600 /etc/pgrelay/userlist.txt",
    );
    assert.equal(
      secretFileProblem("/etc/pgrelay/userlist.txt", file(0o640)),
      "its group can access it (mode 0640), and it can hold passwords; run: chmod 600 /etc/pgrelay/userlist.txt",
    );
    for (const mode of [0o604, 0o660, 0o610, 0o601, 0o666, 0o777]) {
      assert.match(secretFileProblem("/x", file(mode)) ?? "", /run: chmod 600 \/x$/, mode.toString(8));
    }
  });

  it("lets the group read a file owned by root (root:pgrelay 0640), but nothing more", () => {
    assert.equal(secretFileProblem("/x", file(0o640, 0)), undefined);
    assert.equal(secretFileProblem("/x", file(0o440, 0)), undefined);
    for (const mode of [0o660, 0o650, 0o644, 0o604, 0o641]) {
      assert.match(
        secretFileProblem("/x", file(mode, 0)) ?? "",
        /run: chmod 600 \/x \(or 640, owned by root/,
        mode.toString(8),
      );
    }
  });

  it("quotes a path the shell would split", () => {
    assert.match(
      secretFileProblem("/tmp/my users'.txt", file(0o644)) ?? "",
      /run: chmod 600 '\/tmp\/my users'\\''\.txt'$/,
    );
  });

  it("refuses what is not a regular file", () => {
    assert.equal(
      secretFileProblem("/etc", { mode: 0o040700, uid: 0, isFile: false }),
      "is not a regular file",
    );
  });
});

describe("auth.file permissions", () => {
  let dir = "";
  let userlist = "";
  const password = "right";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-secret-"));
    const verifier = await makeScramVerifier(password, new Uint8Array(16).fill(3), 4096);
    userlist = `"alice" "${formatScramVerifier(verifier)}"\n`;
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("readSecretFile() reads a 0600 file and refuses a 0644 one", async () => {
    const path = join(dir, "read.txt");
    await writeFile(path, "secret", { mode: 0o600 });
    assert.equal(await readSecretFile(path), "secret");
    await chmod(path, 0o644);
    await assert.rejects(readSecretFile(path), {
      message: `others can access it (mode 0644), and it can hold passwords; run: chmod 600 ${path}` +
        (isRoot ? " (or 640, owned by root, to let its group read it)" : ""),
    });
    await assert.rejects(readSecretFile(join(dir, "missing.txt")), { code: "ENOENT" });
  });

  it("readSecretFile() allows group read only when root owns the file", {
    skip: !isRoot && "needs root to chown",
  }, async () => {
    const path = join(dir, "group.txt");
    await writeFile(path, "secret", { mode: 0o600 });
    await chmod(path, 0o640);
    assert.equal(await readSecretFile(path), "secret", "root:group 0640");
    await chown(path, 65534, 65534);
    await assert.rejects(readSecretFile(path), /its group can access it \(mode 0640\).*run: chmod 600 /);
  });

  it("--check refuses a group- or world-readable auth.file with the chmod to run, exit 2", async () => {
    const path = join(dir, "check.txt");
    await writeFile(path, userlist, { mode: 0o600 });
    const ok = await runPgrelay(["--check", "--auth-mode", "scram", "--auth-file", path]);
    assert.equal(ok.code, 0, ok.stderr);
    await chmod(path, 0o644);
    const open = await runPgrelay(["--check", "--auth-mode", "scram", "--auth-file", path]);
    assert.equal(open.code, 2);
    assert.match(
      open.stderr,
      new RegExp(
        `^pgrelay: auth\\.file: "${path}": others can access it \\(mode 0644\\), and it can hold passwords; run: chmod 600 ${path}`,
      ),
    );
    const start = await runPgrelay([
      "--listen",
      "127.0.0.1:0",
      "--upstream",
      "127.0.0.1:1",
      "--auth-mode",
      "scram",
      "--auth-file",
      path,
    ]);
    assert.equal(start.code, 2, "pgrelay does not start with it either");
    assert.match(start.stderr, /chmod 600 /);
  });

  it("a reload with a bad mode keeps the old file and logs why", async () => {
    const path = join(dir, "reload.txt");
    await writeFile(path, userlist, { mode: 0o600 });
    const config = join(dir, "reload.yaml");
    await writeFile(config, `upstream: 127.0.0.1:1\nauth: { mode: scram, file: ${path} }\n`);
    const proxy = await spawnPgrelay(["--config", config]);
    /** Logs in as alice; the SQLSTATE pgrelay answers with (08001 once it tries the unreachable upstream). */
    const login = async () => {
      const client = await RawClient.connect("127.0.0.1", proxy.address.port);
      try {
        client.startup({ user: "alice", database: "app" });
        const error = await client.authenticate(password).then(() => undefined, (e: unknown) => e);
        assert.ok(error instanceof BackendError, String(error));
        return error.code;
      } finally {
        await client.close();
      }
    };
    try {
      assert.match(
        String(await login()),
        /^08/,
        "alice is listed: authenticated, then the upstream is unreachable",
      );
      await writeFile(path, "; nobody any more\n");
      await chmod(path, 0o644);
      process.kill(proxy.pid, "SIGHUP");
      await waitFor(() => proxy.stderr().includes('"config_reload_failed"'), "config_reload_failed");
      const line = proxy.stderr().split("\n").find((l) => l.includes('"config_reload_failed"'))!;
      assert.match(
        JSON.parse(line).error,
        new RegExp(`auth\\.file: "${path}": others can access it \\(mode 0644\\).*run: chmod 600 ${path}`),
      );
      assert.match(String(await login()), /^08/, "the previous file is still in use");
      await chmod(path, 0o600);
      process.kill(proxy.pid, "SIGHUP");
      await waitFor(() => proxy.stderr().includes('"config_reloaded"'), "config_reloaded");
      assert.equal(await login(), "28P01", "the fixed file is loaded: alice is no longer listed");
    } finally {
      await proxy.stop();
    }
  });
});
