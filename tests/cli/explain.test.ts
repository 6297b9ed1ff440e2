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
    assert.match(result.stdout, /policy\s+\(default, enforce_on_reload, rules\)/);
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
      /--explain takes KEY=VALUE words with keys user, database, application_name, source, tls, time, replication, options, server_name, got "usr=alice"/,
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

  it("--explain reads user, database, application_name, replication and options as the server does", async () => {
    const rules = join(dir, "replication.yaml");
    await writeFile(
      rules,
      `upstream: 127.0.0.1:5432
policy:
  default: deny
  rules:
    - name: no-evil
      deny: { application_name: "evil*" }
    - name: appdb
      allow: { database: appdb }
    - name: wal
      allow: { user: repl, replication: true }
`,
    );
    const run = (...words: string[]) => runPgrelay(["--config", rules, "--explain", ...words]);
    const walOfApp = await run("user=alice", "database=appdb", "replication=true");
    assert.equal(walOfApp.code, 3, walOfApp.stdout + walOfApp.stderr);
    assert.match(walOfApp.stdout, /facts: user="alice" database="" application_name="" replication=true /);
    assert.match(walOfApp.stdout, /does not match: replication is true, and only a rule naming replication allows it/);
    const repl = await run("user=repl", "database=appdb", "replication=true");
    assert.equal(repl.code, 0, repl.stdout);
    assert.match(repl.stdout, /decision: ALLOW by rule "wal" rules\[2\]/);
    const logical = await run("user=repl", "database=appdb", "replication=database");
    assert.equal(logical.code, 3, "replication: true is physical only");
    const ordinary = await run("user=alice", "database=appdb", "replication=off");
    assert.equal(ordinary.code, 0);
    const viaOptions = await run("user=alice", "database=appdb", "options=-c application_name=evil1");
    assert.equal(viaOptions.code, 3);
    assert.match(viaOptions.stdout, /application_name="evil1"/);
    assert.match(viaOptions.stdout, /decision: DENY by rule "no-evil"/);
    const emptyDatabase = await run("user=appdb", "database=");
    assert.match(emptyDatabase.stdout, /database="appdb"/);
    assert.equal(emptyDatabase.code, 0);
    const bad = await run("user=repl", "replication=maybe");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid value for parameter "replication": "maybe"/);
  });

  it("--check refuses rules and limits that tls.mode passthrough cannot see, naming file, line and rule", async () => {
    const blind = join(dir, "passthrough.yaml");
    await writeFile(
      blind,
      `upstream: 127.0.0.1:5432
tls: { mode: passthrough }
limits:
  per_source: 10
  per_user: 5
policy:
  rules:
    - name: no-interns
      deny: { user: "intern*", source: "0.0.0.0/0" }
    - allow: { source: "10.0.0.0/8", tls: true }
    - name: plaintext-only
      deny: { user: "intern*", tls: false }
    - deny:
        replication: [true, database]
`,
    );
    const result = await runPgrelay(["--config", blind, "--check"]);
    assert.equal(result.code, 2, result.stdout);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 3, result.stderr);
    assert.match(
      lines[0]!,
      /^pgrelay: .*passthrough\.yaml:9: policy\.rules\[0\]\.deny\.user: rule "no-interns" depends on user, which tls\.mode passthrough cannot see in an end-to-end encrypted session/,
    );
    assert.match(lines[1]!, /passthrough\.yaml:14: policy\.rules\[3\]\.deny\.replication: rule "rules\[3\]" depends on replication/);
    assert.match(lines[2]!, /passthrough\.yaml:5: limits\.per_user: cannot be enforced with tls\.mode passthrough/);
    const fine = await runPgrelay([
      "--config",
      blind,
      "--check",
      "--tls-mode",
      "disable",
    ]);
    assert.equal(fine.code, 0, fine.stderr);
  });
});
