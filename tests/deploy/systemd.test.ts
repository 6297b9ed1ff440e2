/**
 * deploy/pgrelay.service: `systemd-analyze verify` finds nothing to complain about, the hardening score
 * stays where it is, and the settings pgrelay depends on are there.
 *
 * `verify` checks that ExecStart's program exists and is executable, and /usr/local/bin/pgrelay does not
 * exist on a build machine. So the unit verified is a copy whose ExecStart path (only the path: the
 * arguments and every other line are unchanged) points to an executable stub in a temp dir; everything
 * else verify says about the unit fails the test.
 */
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { DEFAULT_CONFIG } from "../../src/host/config_schema.ts";
import { parseDuration } from "../../src/config/units.ts";
import { PROJECT_ROOT } from "../support/pgrelay.ts";
import { type ProcessResult, runProcess } from "../support/process.ts";

const UNIT_PATH = join(PROJECT_ROOT, "deploy", "pgrelay.service");
const INSTALLED_BINARY = "/usr/local/bin/pgrelay";

describe("deploy/pgrelay.service", () => {
  let dir = "";
  let unit = "";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-unit-"));
    unit = await readFile(UNIT_PATH, "utf8");
    const stub = join(dir, "pgrelay");
    await writeFile(stub, "#!/bin/sh\nexit 0\n");
    await chmod(stub, 0o755);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes `text` as <dir>/<name>/pgrelay.service with ExecStart's path moved to the stub; runs verify. */
  async function verify(text: string, name: string): Promise<ProcessResult & { complaints: string[] }> {
    const execStart = `ExecStart=${INSTALLED_BINARY} `;
    assert.ok(text.includes(`\n${execStart}`), `the unit starts ${INSTALLED_BINARY}`);
    const unitDir = join(dir, name);
    await runProcess("mkdir", ["-p", unitDir]);
    const file = join(unitDir, "pgrelay.service");
    await writeFile(file, text.replace(`\n${execStart}`, `\nExecStart=${join(dir, "pgrelay")} `));
    const result = await systemdAnalyze(["verify", file]);
    const complaints = result.stderr.split("\n").filter((line) => line.includes("pgrelay.service") || line.includes(dir));
    return { ...result, complaints };
  }

  it("systemd-analyze verify: exit 0 and no warning about the unit", async () => {
    const result = await verify(unit, "shipped");
    assert.deepEqual(result.complaints, [], result.stderr);
    assert.equal(result.code, 0, result.stderr);
  });

  it("the same check fails on a misspelt setting and on a missing program (so it can fail)", async () => {
    const typo = await verify(unit.replace("\nProtectHome=yes\n", "\nProtectHomee=yes\n"), "typo");
    assert.match(typo.complaints.join("\n"), /Unknown key.*ProtectHomee/);
    const file = join(dir, "missing", "pgrelay.service");
    await runProcess("mkdir", ["-p", join(dir, "missing")]);
    await writeFile(file, unit.replace(`ExecStart=${INSTALLED_BINARY} `, `ExecStart=${join(dir, "nothing-here")} `));
    const missing = await systemdAnalyze(["verify", file]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /is not executable: No such file or directory/);
  });

  it("keeps what pgrelay relies on: Type=notify, no W^X, no capabilities, restarts, file limit", () => {
    const settings = unitSettings(unit);
    const expected: Record<string, string> = {
      Type: "notify",
      NotifyAccess: "all",
      ExecReload: "/bin/kill -HUP $MAINPID",
      KillSignal: "SIGTERM",
      KillMode: "mixed",
      Restart: "always",
      User: "pgrelay",
      Group: "pgrelay",
      LimitNOFILE: "65536",
      CapabilityBoundingSet: "",
      AmbientCapabilities: "",
      NoNewPrivileges: "yes",
      ProtectSystem: "strict",
      RestrictAddressFamilies: "AF_INET AF_INET6 AF_UNIX",
      LogsDirectory: "pgrelay",
      // V8 and JavaScriptCore need writable-then-executable memory (see the comment in the unit).
      MemoryDenyWriteExecute: "no",
    };
    for (const [key, value] of Object.entries(expected)) assert.equal(settings.get(key), value, key);
    assert.equal(settings.get("ExecStart"), `${INSTALLED_BINARY} --config /etc/pgrelay/pgrelay.yaml`);
  });

  it("TimeoutStopSec is longer than the default drain_timeout and the example config's", async () => {
    const stopMs = systemdSeconds(unitSettings(unit).get("TimeoutStopSec")) * 1000;
    const example = parse(await readFile(join(PROJECT_ROOT, "deploy", "pgrelay.yaml"), "utf8")) as Record<string, unknown>;
    const exampleDrainMs = parseDuration(example["drain_timeout"] ?? "30s");
    assert.ok(stopMs > DEFAULT_CONFIG.drainTimeoutMs, `TimeoutStopSec ${stopMs} ms vs default drain ${DEFAULT_CONFIG.drainTimeoutMs} ms`);
    assert.ok(stopMs > exampleDrainMs, `TimeoutStopSec ${stopMs} ms vs example drain_timeout ${exampleDrainMs} ms`);
  });

  it("systemd-analyze security rates the unit's exposure at most 3.5 (was 3.2)", async () => {
    const file = join(dir, "pgrelay.service");
    await writeFile(file, unit);
    const result = await systemdAnalyze(["security", "--offline=true", "--no-pager", file]);
    const match = /Overall exposure level for pgrelay\.service: ([\d.]+)/.exec(result.stdout + result.stderr);
    assert.ok(match, result.stdout + result.stderr);
    assert.ok(Number(match[1]) <= 3.5, `exposure ${match[1]}:\n${result.stdout}`);
  });
});

async function systemdAnalyze(args: string[]): Promise<ProcessResult> {
  try {
    return await runProcess("systemd-analyze", args, { timeoutMs: 60_000, env: { ...process.env, SYSTEMD_COLORS: "0" } });
  } catch (error) {
    throw new Error(`${(error as Error).message}\nsystemd-analyze comes from Debian's systemd package: run 'make setup'`);
  }
}

/** The [Service]/[Unit] assignments of a unit file, last one winning (as systemd reads single values). */
function unitSettings(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) settings.set(match[1]!, match[2]!);
  }
  return settings;
}

/** A systemd time span as used here: "45", "45s", "2min", "1min 30s"; returns seconds. */
function systemdSeconds(value: string | undefined): number {
  const units: Record<string, number> = { "": 1, s: 1, sec: 1, m: 60, min: 60, h: 3600 };
  let seconds = 0;
  for (const part of (value ?? "").trim().split(/\s+/)) {
    const match = /^(\d+)(s|sec|m|min|h)?$/.exec(part);
    if (!match) throw new RangeError(`unexpected time span ${JSON.stringify(value)}`);
    seconds += Number(match[1]) * units[match[2] ?? ""]!;
  }
  return seconds;
}
