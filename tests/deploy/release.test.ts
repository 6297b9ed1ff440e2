/**
 * `make release` and the Debian package on this machine, as an operator would use it: build the x64 package,
 * `dpkg -i` it, relay psql through the installed /usr/bin/pgrelay running as the pgrelay user with the
 * installed config, then `dpkg -r` and `dpkg -P`, and the user created without systemd-sysusers (a chroot).
 *
 * It changes the machine (a package, a system user), so it runs only as root with PGRELAY_TEST_RELEASE=1
 * (`make test-release`, which .ci/run calls after `make test`), refuses to start when any pgrelay it did not
 * install is present, and leaves the machine as it found it: the package purged and, if the test created it,
 * the pgrelay user deleted.
 */
import assert from "node:assert/strict";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { appendFile, mkdir, mkdtemp, readdir, rm, stat, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { runPsql } from "../support/clients.ts";
import { PROJECT_ROOT } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { runProcess } from "../support/process.ts";
import { startBinary } from "./support/binary.ts";
import { dpkg, packageState } from "./support/dpkg.ts";

const VERSION = `${(JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { version: string }).version}~test`;
const DEB = `pgrelay_${VERSION}_amd64.deb`;
const NAME = `pgrelay-${VERSION}-linux-x64`;
const SKIP = process.env["PGRELAY_TEST_RELEASE"] !== "1"
  ? "set PGRELAY_TEST_RELEASE=1 (make test-release): installs a package on this machine"
  : process.getuid?.() !== 0
  ? "needs root (dpkg -i)"
  : false;
const named = (name: string) => (SKIP ? `${name} (skipped: ${SKIP})` : name);

/** Everything the package installs, and which of it stays after `dpkg -r`. */
const PACKAGE_FILES = {
  "/usr/bin/pgrelay": "removed",
  "/lib/systemd/system/pgrelay.service": "removed",
  "/usr/lib/sysusers.d/pgrelay.conf": "removed",
  "/usr/share/man/man1/pgrelay.1.gz": "removed",
  "/usr/share/man/man5/pgrelay.yaml.5.gz": "removed",
  "/usr/share/doc/pgrelay/copyright": "removed",
  "/etc/pgrelay/pgrelay.yaml": "kept until purge",
} as const;
const ENABLED = "/etc/systemd/system/multi-user.target.wants/pgrelay.service";

/** The pgrelay line of /etc/passwd, split (undefined without one). */
async function passwdEntry(): Promise<string[] | undefined> {
  const result = await runProcess("getent", ["passwd", "pgrelay"]);
  return result.code === 0 ? result.stdout.trim().split(":") : undefined;
}
const exists = (path: string) => {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
};
const ownerOf = async (path: string) => {
  const info = await stat(path);
  const group = (await runProcess("getent", ["group", String(info.gid)])).stdout.split(":")[0];
  return `${info.uid}:${group} ${(info.mode & 0o777).toString(8)}`;
};

describe("make release and the Debian package, installed with dpkg", () => {
  let dir = "";
  let cluster: PostgresCluster | undefined;
  /** Set once the guard passed: only then may `after` purge a package or delete the user. */
  let ours = false;
  let userExisted = false;

  /** A failed `before` does not stop every runner from running the tests: each checks the guard itself. */
  const guardPassed = () => {
    if (!ours) throw new Error("not run: the guard in before() refused or failed (see its error)");
  };

  before(async () => {
    if (SKIP) return;
    const present = [await packageState("pgrelay") !== "absent" ? "the pgrelay package (dpkg -l pgrelay)" : "", ...Object.keys(PACKAGE_FILES), "/etc/pgrelay", ENABLED]
      .filter((what) => what !== "" && (what.startsWith("/") ? exists(what) : true));
    if (present.length > 0) {
      throw new Error(`refusing to run: a pgrelay this test did not install is on this machine (${present.join(", ")}); remove it or run elsewhere`);
    }
    ours = true;
    userExisted = (await passwdEntry()) !== undefined;
    dir = await mkdtemp(join(tmpdir(), "pgrelay-release-"));
    const make = runProcess(
      "make",
      ["-s", "--no-print-directory", "-C", PROJECT_ROOT, "-o", "node_modules/.installed", "release", `VERSION=${VERSION}`, "RELEASE_ARCHES=x64", `RELEASE_DIR=${dir}`],
      { timeoutMs: 300_000 },
    );
    const [built, started] = await Promise.all([make, startPostgres()]);
    cluster = started;
    assert.equal(built.code, 0, built.stdout + built.stderr);
  });

  after(async () => {
    await cluster?.stop();
    if (ours && await packageState("pgrelay") !== "absent") await dpkg(["--purge", "pgrelay"]);
    if (ours && !userExisted && (await passwdEntry()) !== undefined) {
      await runProcess("userdel", ["pgrelay"]);
      await runProcess("groupdel", ["pgrelay"]); // gone with the user already unless it had other members
    }
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it(named("make release: the binary, a tarball with unit, sysusers, config, man pages and LICENSE, a .deb, SHA256SUMS"), { skip: SKIP }, async () => {
    guardPassed();
    const sums = await runProcess("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir });
    assert.equal(sums.code, 0, sums.stdout + sums.stderr);
    assert.deepEqual(sums.stdout.trim().split("\n").sort(), [NAME, `${NAME}.tar.gz`, DEB].map((file) => `${file}: OK`).sort());
    const version = await runProcess(join(dir, NAME), ["--version"]);
    assert.match(version.stdout, new RegExp(`^pgrelay ${VERSION.replaceAll(".", "\\.")} \\(bun \\d+\\.\\d+\\.\\d+, commit [0-9a-f]{12}(-dirty)?\\)\\n$`));
    const listing = await runProcess("tar", ["-tzf", join(dir, `${NAME}.tar.gz`)]);
    assert.deepEqual(listing.stdout.trim().split("\n").sort(), [
      "", "LICENSE", "README.md", "man/", "man/pgrelay.1", "man/pgrelay.yaml.5", "pgrelay", "pgrelay.service", "pgrelay.sysusers", "pgrelay.yaml",
    ].map((file) => `${NAME}/${file}`).sort());
    const control = await runProcess("dpkg-deb", ["--field", join(dir, DEB), "Package", "Version", "Architecture"]);
    assert.equal(control.stdout, `Package: pgrelay\nVersion: ${VERSION}\nArchitecture: amd64\n`);
    const conffiles = await runProcess("dpkg-deb", ["--info", join(dir, DEB), "conffiles"]);
    assert.equal(conffiles.stdout, "/etc/pgrelay/pgrelay.yaml\n");
    const contents = (await runProcess("dpkg-deb", ["--contents", join(dir, DEB)])).stdout;
    for (const path of Object.keys(PACKAGE_FILES)) assert.match(contents, new RegExp(` \\.${path.replaceAll(".", "\\.")}\\n`), path);
  });

  let sysusersEntry: string[] = [];
  it(named("dpkg -i: files in place, the user made by systemd-sysusers, the config 0640 root:pgrelay, the unit enabled, not started"), { skip: SKIP }, async () => {
    guardPassed();
    const installed = await dpkg(["--install", join(dir, DEB)]);
    assert.equal(installed.code, 0, installed.stdout + installed.stderr);
    assert.equal(await packageState("pgrelay"), "installed");
    for (const path of Object.keys(PACKAGE_FILES)) assert.ok(existsSync(path), path);
    const entry = await passwdEntry();
    assert.ok(entry !== undefined, "the pgrelay user exists");
    sysusersEntry = entry;
    const [, , uid, , gecos, home, shell] = entry;
    assert.ok(Number(uid) < 1000, `a system uid, got ${uid}`);
    assert.deepEqual([gecos, home, shell], ["pgrelay PostgreSQL proxy", "/nonexistent", "/usr/sbin/nologin"]);
    assert.equal(await ownerOf("/etc/pgrelay/pgrelay.yaml"), "0:pgrelay 640");
    assert.equal(await ownerOf("/etc/pgrelay"), "0:pgrelay 750");
    const conffiles = (await runProcess("dpkg-query", ["-W", "-f=${Conffiles}", "pgrelay"])).stdout;
    assert.match(conffiles, /^ \/etc\/pgrelay\/pgrelay\.yaml [0-9a-f]{32}$/m);
    assert.match(readFileSync("/lib/systemd/system/pgrelay.service", "utf8"), /^ExecStart=\/usr\/bin\/pgrelay --config \/etc\/pgrelay\/pgrelay\.yaml$/m);
    assert.ok(exists(ENABLED), `${ENABLED}: the unit is enabled`);
    const running = await runProcess("pgrep", ["-x", "-u", "pgrelay", "pgrelay"]);
    assert.equal(running.stdout, "", "nothing started pgrelay");
    const man = await runProcess("man", ["-w", "5", "pgrelay.yaml"]);
    assert.equal(man.stdout.trim(), "/usr/share/man/man5/pgrelay.yaml.5.gz");
  });

  it(named("the installed /usr/bin/pgrelay, as user pgrelay with the installed config, relays psql to PostgreSQL"), { skip: SKIP }, async () => {
    guardPassed();
    const asPgrelay = ["--reuid=pgrelay", "--regid=pgrelay", "--init-groups", "/usr/bin/pgrelay", "--config", "/etc/pgrelay/pgrelay.yaml"];
    const check = await runProcess("setpriv", [...asPgrelay, "--check"]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /config OK: listen 127\.0\.0\.1:6432/);
    const version = await runProcess("/usr/bin/pgrelay", ["--version"]);
    assert.match(version.stdout, new RegExp(`^pgrelay ${VERSION.replaceAll(".", "\\.")} \\(bun `));
    const proxy = await startBinary("setpriv", [...asPgrelay, "--listen", "127.0.0.1:0", "--upstream", `127.0.0.1:${cluster!.port}`]);
    try {
      assert.equal(proxy.listening["runtime"], "bun");
      const { user, password } = cluster!.users.scram;
      const result = await runPsql(["-At", "-c", "select current_user, 40 + 2"], { host: "127.0.0.1", port: proxy.port, user, password });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `${user}|42\n`);
    } finally {
      assert.equal(await proxy.stop(), 0, proxy.stderr());
    }
  });

  it(named("dpkg -i again (reinstall): an edited config is kept, the user is the same"), { skip: SKIP }, async () => {
    guardPassed();
    await appendFile("/etc/pgrelay/pgrelay.yaml", "# edited by the operator\n");
    const again = await dpkg(["--force-confold", "--install", join(dir, DEB)]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(readFileSync("/etc/pgrelay/pgrelay.yaml", "utf8"), /# edited by the operator\n$/);
    assert.deepEqual(await passwdEntry(), sysusersEntry);
    assert.equal((await runProcess("getent", ["passwd"])).stdout.split("\n").filter((line) => line.startsWith("pgrelay:")).length, 1);
  });

  it(named("dpkg -r: binary, unit and man pages gone; the config and the user stay"), { skip: SKIP }, async () => {
    guardPassed();
    const removed = await dpkg(["--remove", "pgrelay"]);
    assert.equal(removed.code, 0, removed.stdout + removed.stderr);
    assert.equal(await packageState("pgrelay"), "config-files");
    for (const [path, fate] of Object.entries(PACKAGE_FILES)) assert.equal(existsSync(path), fate !== "removed", path);
    assert.ok(!existsSync(ENABLED), "no enablement of the removed unit is left that would start anything");
    assert.deepEqual(await passwdEntry(), sysusersEntry);
  });

  it(named("dpkg -P: the config, /etc/pgrelay and the enablement are gone; the user stays (Debian leaves system users)"), { skip: SKIP }, async () => {
    guardPassed();
    const purged = await dpkg(["--purge", "pgrelay"]);
    assert.equal(purged.code, 0, purged.stdout + purged.stderr);
    assert.equal(await packageState("pgrelay"), "absent");
    for (const path of [...Object.keys(PACKAGE_FILES), "/etc/pgrelay", ENABLED, "/var/log/pgrelay"]) assert.ok(!exists(path), path);
    assert.deepEqual(await passwdEntry(), sysusersEntry);
  });

  it(named("without systemd-sysusers (a chroot, a minimal image) postinst makes the same user with useradd"), { skip: SKIP }, async (t) => {
    guardPassed();
    if (userExisted) {
      t.skip("the pgrelay user existed before this test; it is not deleted to try the fallback");
      return;
    }
    assert.equal((await runProcess("userdel", ["pgrelay"])).code, 0);
    await runProcess("groupdel", ["pgrelay"]);
    // A PATH holding every command of this machine but systemd-sysusers.
    const shim = join(dir, "path-without-sysusers");
    await mkdir(shim);
    for (const bin of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
      if (!existsSync(bin)) continue;
      for (const name of await readdir(bin)) {
        if (name !== "systemd-sysusers" && !exists(join(shim, name))) await symlink(join(bin, name), join(shim, name));
      }
    }
    const installed = await dpkg(["--install", join(dir, DEB)], { ...process.env, PATH: shim });
    assert.equal(installed.code, 0, installed.stdout + installed.stderr);
    const entry = await passwdEntry();
    assert.ok(entry !== undefined, "useradd made the pgrelay user");
    assert.ok(Number(entry[2]) < 1000, `a system uid, got ${entry[2]}`);
    assert.deepEqual([entry[0], entry[4], entry[5], entry[6]], [sysusersEntry[0], sysusersEntry[4], sysusersEntry[5], sysusersEntry[6]]);
    assert.equal(await ownerOf("/etc/pgrelay/pgrelay.yaml"), "0:pgrelay 640");
    const purged = await dpkg(["--purge", "pgrelay"]);
    assert.equal(purged.code, 0, purged.stdout + purged.stderr);
    assert.equal(await packageState("pgrelay"), "absent");
  });
});
