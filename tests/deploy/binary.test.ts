/**
 * Single binaries: `scripts/build_bun.sh` (what `make build-bun` runs; node_modules/.bin/bun even when the
 * tests run on Deno) builds one into a temp dir, which then relays psql to a real PostgreSQL. The Deno
 * binary needs denort (DENORT_BIN) and is skipped without it; `make build`'s own checks always run.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { runPsql } from "../support/clients.ts";
import { PROJECT_ROOT } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { runProcess } from "../support/process.ts";
import { buildBinary, startBinary } from "./support/binary.ts";

const VERSION = (JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { version: string }).version;
/** "pgrelay 0.1.0 (bun 1.4.5, commit 66252bfb2d27)": the commit is HEAD's, "-dirty" with uncommitted changes. */
const versionLine = (runtime: string) => {
  const head = execFileSync("git", ["-C", PROJECT_ROOT, "rev-parse", "--short=12", "HEAD"], { encoding: "utf8" }).trim();
  return new RegExp(`^pgrelay ${VERSION.replaceAll(".", "\\.")} \\(${runtime} \\d+\\.\\d+\\.\\d+, commit ${head}(-dirty)?\\)\n$`);
};
const DENORT_BIN = process.env["DENORT_BIN"];
const DENO_SKIP = DENORT_BIN ? false : "DENORT_BIN is not set: deno compile needs a local denort 2.9.6 offline";

/** psql -c "select 1" through the binary at `port`, as the scram user. */
async function selectOne(cluster: PostgresCluster, port: number): Promise<void> {
  const { user, password } = cluster.users.scram;
  const result = await runPsql(["-At", "-c", "select 1"], { host: "127.0.0.1", port, user, password });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "1\n");
}

/** Starts the binary in front of the cluster, runs psql through it, stops it with SIGTERM. */
async function relaySmokeTest(binary: string, cluster: PostgresCluster, runtime: string, extra: string[] = []): Promise<void> {
  const proxy = await startBinary(binary, ["--listen", "127.0.0.1:0", "--upstream", `127.0.0.1:${cluster.port}`, ...extra]);
  try {
    assert.equal(proxy.listening["runtime"], runtime);
    assert.ok(proxy.port > 0);
    await selectOne(cluster, proxy.port);
  } finally {
    const code = await proxy.stop();
    assert.equal(code, 0, proxy.stderr());
  }
}

describe("make build-bun: bun build --compile single binary", () => {
  let dir = "";
  let binary = "";
  let cluster: PostgresCluster;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-binary-"));
    binary = join(dir, "pgrelay-bun");
    const [build, started] = await Promise.all([buildBinary("bun", binary), startPostgres()]);
    cluster = started;
    assert.equal(build.code, 0, build.stdout + build.stderr);
  });
  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it(`--version prints "pgrelay ${VERSION}" (package.json's version), Bun's version and the commit, embedded`, async () => {
    const result = await runProcess(binary, ["--version"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, versionLine("bun"));
    const help = await runProcess(binary, ["--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /--listen/);
  });

  it("relays psql to PostgreSQL (SCRAM) and exits 0 on SIGTERM", async () => {
    await relaySmokeTest(binary, cluster, "bun");
  });

  it("--workers 2 starts copies of the binary itself and relays", async () => {
    await relaySmokeTest(binary, cluster, "bun", ["--workers", "2"]);
  });
});

// Skipped per test, with the reason in the name: `deno test` and `bun test` print neither a skip reason
// nor (bun) the tests of a skipped describe.
describe("make build: deno compile single binary", () => {
  const named = (name: string) => (DENO_SKIP ? `${name} (skipped: ${DENO_SKIP})` : name);
  let dir = "";
  let binary = "";
  let cluster: PostgresCluster | undefined;

  before(async () => {
    if (DENO_SKIP) return;
    dir = await mkdtemp(join(tmpdir(), "pgrelay-binary-deno-"));
    binary = join(dir, "pgrelay-deno");
    const [build, started] = await Promise.all([buildBinary("deno", binary), startPostgres()]);
    cluster = started;
    assert.equal(build.code, 0, build.stdout + build.stderr);
  });
  after(async () => {
    await cluster?.stop();
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it(named(`--version prints "pgrelay ${VERSION}", Deno's version and the commit`), { skip: DENO_SKIP }, async () => {
    const result = await runProcess(binary, ["--version"]);
    assert.match(result.stdout, versionLine("deno"));
  });

  it(named("relays psql to PostgreSQL (SCRAM) and exits 0 on SIGTERM"), { skip: DENO_SKIP }, async () => {
    await relaySmokeTest(binary, cluster!, "deno");
  });
});

describe("make build: what it needs, said before anything is built", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-build-deno-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const withoutDenort = (): Record<string, string | undefined> => {
    const env: Record<string, string | undefined> = { ...process.env };
    delete env["DENORT_BIN"];
    delete env["DENO_DOWNLOAD"];
    return env;
  };

  it("without DENORT_BIN: names denort 2.9.6, DENORT_BIN, internet access and make build-bun; exit 1", async () => {
    // The Makefile target itself (-o: do not run npm install for node_modules/.installed).
    const result = await runProcess("make", ["-s", "--no-print-directory", "-C", PROJECT_ROOT, "-o", "node_modules/.installed", "build"], {
      env: withoutDenort(),
    });
    assert.notEqual(result.code, 0);
    for (const needle of ["denort", "Deno 2.9.6", "DENORT_BIN=", "internet", "make build-bun"]) {
      assert.ok(result.stderr.includes(needle), `mentions ${needle}:\n${result.stderr}`);
    }
  });

  it("DENORT_BIN naming a missing file says so", async () => {
    const missing = join(dir, "no-denort");
    const result = await buildBinary("deno", join(dir, "out"), { ...withoutDenort(), DENORT_BIN: missing });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`DENORT_BIN=${missing}: no such file`));
  });

  it("DENORT_BIN pointing at the deno command line instead of denort: the result is refused and removed", async () => {
    const deno = join(PROJECT_ROOT, "node_modules", "deno", "deno");
    const out = join(dir, "pgrelay-deno");
    const result = await buildBinary("deno", out, { ...withoutDenort(), DENORT_BIN: deno });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stderr, /printed 'deno 2\.9\.6.*not 'pgrelay /);
    assert.ok(!existsSync(out));
  });
});
