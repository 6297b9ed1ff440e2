import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runPgrelay } from "../support/pgrelay.ts";

const POLICY = `upstream: 127.0.0.1:5432
policy:
  default: allow
  rules:
    - name: no-interns-on-prod
      deny: { user: "intern*", database: "prod" }
    - allow: { source: "10.0.0.0/8", tls: true }
    - name: weekend-freeze
      deny: { database: prod, time: { days: [sat-sun] } }
`;

describe("pgrelay --explain and --check of policy", () => {
  let dir = "";
  let file = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgrelay-explain-"));
    file = join(dir, "policy.yaml");
    await writeFile(file, POLICY);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("--help mentions --explain", async () => {
    const result = await runPgrelay(["--help"]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /--explain KEY=VALUE/);
    assert.match(result.stdout, /policy \(default, enforce_on_reload, rules\)/);
  });

  it("prints the deciding rule and why, exits 3 when denied and 0 when allowed, without listening", async () => {
    const denied = await runPgrelay([
      "--config",
      file,
      "--explain",
      "user=intern7",
      "database=prod",
      "source=10.1.2.3",
    ]);
    assert.equal(denied.code, 3, denied.stderr);
    assert.match(
      denied.stdout,
      /rules\[0\] "no-interns-on-prod" \(deny\): MATCHES\n {4}matches: user "intern7" vs "intern\*"\n {4}matches: database "prod" vs "prod"/,
    );
    assert.match(denied.stdout, /^decision: DENY by rule "no-interns-on-prod" rules\[0\]$/m);
    assert.doesNotMatch(denied.stderr, /listening/);

    const weekend = await runPgrelay([
      "--config",
      file,
      "--explain",
      "user=alice",
      "database=prod",
      "source=10.1.2.3",
      "time=2026-05-09T12:00:00Z",
    ]);
    assert.equal(weekend.code, 3);
    assert.match(
      weekend.stdout,
      /rules\[1\] \(allow\): skipped\n {4}matches: source 10\.1\.2\.3 is in 10\.0\.0\.0\/8\n {4}does not match: tls is false, rule wants true/,
    );
    assert.match(weekend.stdout, /matches: time sat 12:00 UTC is in days sat-sun tz UTC/);
    assert.match(weekend.stdout, /decision: DENY by rule "weekend-freeze" rules\[2\]/);

    const tls = await runPgrelay([
      "--config",
      file,
      "--explain",
      "user=alice",
      "database=prod",
      "source=10.1.2.3",
      "tls=true",
    ]);
    assert.equal(tls.code, 0);
    assert.match(tls.stdout, /decision: ALLOW by rules\[1\]/);

    const fallthrough = await runPgrelay([
      "--config",
      file,
      "--explain",
      "user=alice",
      "source=192.0.2.1",
      "time=2026-05-06T12:00:00Z",
    ]);
    assert.equal(fallthrough.code, 0);
    assert.match(fallthrough.stdout, /database="alice"/, "database defaults to the user");
    assert.match(fallthrough.stdout, /decision: ALLOW by the default \(no rule matched; 3 rules\)/);
  });

  it("a bad --explain word exits 2 naming it", async () => {
    const result = await runPgrelay(["--config", file, "--explain", "usr=alice"]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /--explain takes KEY=VALUE words with keys user, database, application_name, source, tls, time, got "usr=alice"/,
    );
    assert.match((await runPgrelay(["--explain", "source=banana"])).stderr, /source must be an IP address/);
  });

  it("--check names the file line of each bad rule and exits 2", async () => {
    const bad = join(dir, "bad.yaml");
    await writeFile(
      bad,
      POLICY.replace('source: "10.0.0.0/8"', 'source: "10.0.0/8"').replace("[sat-sun]", "[sat-sunday]"),
    );
    const result = await runPgrelay(["--config", bad, "--check"]);
    assert.equal(result.code, 2);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 2, result.stderr);
    assert.match(
      lines[0]!,
      /^pgrelay: .*bad\.yaml:7: policy\.rules\[1\]\.allow\.source: expected an IP address or CIDR block/,
    );
    assert.match(
      lines[1]!,
      /^pgrelay: .*bad\.yaml:9: policy\.rules\[2\]\.deny\.time\.days: expected day names/,
    );
    const good = await runPgrelay(["--config", file, "--check"]);
    assert.equal(good.code, 0);
    assert.match(good.stdout, /policy 3 rules \(default allow\), audit off/);
  });
});
