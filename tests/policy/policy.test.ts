import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SettingError, SettingErrors } from "../../src/config/config_error.ts";
import { cidrContains, parseCidr, parseIp } from "../../src/policy/cidr.ts";
import { evaluatePolicy, explainDecision, type PolicyFacts } from "../../src/policy/evaluate.ts";
import { compileGlob } from "../../src/policy/glob.ts";
import { parsePolicy } from "../../src/policy/policy_schema.ts";
import { inTimeWindow, parseTimeWindow } from "../../src/policy/time_window.ts";

const facts = (over: Partial<PolicyFacts> = {}): PolicyFacts => ({
  user: "alice",
  database: "app",
  applicationName: "psql",
  replication: "false",
  source: "10.1.2.3",
  tls: false,
  now: new Date("2026-05-04T10:00:00Z"), // a Monday
  ...over,
});

describe("policy globs and CIDR blocks", () => {
  it("compileGlob() matches * and ? and treats everything else literally", () => {
    assert.ok(compileGlob("intern*").test("intern42"));
    assert.ok(compileGlob("intern*").test("intern"));
    assert.ok(!compileGlob("intern*").test("xintern"));
    assert.ok(compileGlob("db?").test("db1"));
    assert.ok(!compileGlob("db?").test("db12"));
    assert.ok(compileGlob("a.b+(c)").test("a.b+(c)"));
    assert.ok(!compileGlob("a.b").test("axb"));
    assert.ok(!compileGlob("Prod").test("prod"), "case-sensitive, as PostgreSQL names are");
  });

  it("parseCidr() and cidrContains() handle IPv4, IPv6, mapped addresses and odd prefixes", () => {
    const v4 = parseCidr("10.0.0.0/8");
    assert.ok(cidrContains(v4, parseIp("10.255.1.2")!));
    assert.ok(!cidrContains(v4, parseIp("11.0.0.1")!));
    assert.ok(cidrContains(v4, parseIp("::ffff:10.1.2.3")!), "IPv4-mapped IPv6 counts as IPv4");
    const odd = parseCidr("192.168.4.0/22");
    assert.ok(cidrContains(odd, parseIp("192.168.7.255")!));
    assert.ok(!cidrContains(odd, parseIp("192.168.8.0")!));
    const v6 = parseCidr("2001:db8::/32");
    assert.ok(cidrContains(v6, parseIp("2001:db8:ffff::1")!));
    assert.ok(!cidrContains(v6, parseIp("2001:db9::1")!));
    assert.ok(!cidrContains(v6, parseIp("10.1.2.3")!), "an IPv4 address is never in an IPv6 block");
    assert.ok(cidrContains(parseCidr("::1"), parseIp("::1")!));
    assert.ok(!cidrContains(parseCidr("::1"), parseIp("::2")!));
    assert.ok(cidrContains(parseCidr("0.0.0.0/0"), parseIp("8.8.8.8")!));
    assert.ok(cidrContains(parseCidr("::ffff:10.0.0.0/104"), parseIp("10.9.9.9")!));
    assert.deepEqual([...parseIp("fe80::1%eth0")!].slice(0, 2), [0xfe, 0x80]);
    for (
      const bad of [
        "10.0.0.0/33",
        "10.0.0/8",
        "256.1.1.1",
        "1::2::3",
        "2001:db8::/129",
        "host/8",
        "10.0.0.0/x",
      ]
    ) {
      assert.throws(() => parseCidr(bad), RangeError, bad);
    }
  });
});

describe("policy time windows", () => {
  it("checks days and hours in the given time zone", () => {
    const office = parseTimeWindow({ days: ["mon-fri"], between: "09:00-18:00", tz: "UTC" });
    assert.ok(inTimeWindow(office, new Date("2026-05-04T09:00:00Z")), "Monday 09:00 is in (start included)");
    assert.ok(!inTimeWindow(office, new Date("2026-05-04T18:00:00Z")), "18:00 is out (end excluded)");
    assert.ok(!inTimeWindow(office, new Date("2026-05-09T10:00:00Z")), "Saturday is out");
    const berlin = parseTimeWindow({ between: "09:00-10:00", tz: "Europe/Berlin" });
    assert.ok(
      inTimeWindow(berlin, new Date("2026-05-04T07:30:00Z")),
      "07:30 UTC is 09:30 in Berlin (summer)",
    );
    assert.ok(!inTimeWindow(berlin, new Date("2026-05-04T09:30:00Z")));
  });

  it("a window across midnight belongs to the day it starts on; day ranges wrap", () => {
    const night = parseTimeWindow({ days: "fri", between: "22:00-06:00" });
    assert.ok(inTimeWindow(night, new Date("2026-05-08T23:00:00Z")), "Friday 23:00");
    assert.ok(inTimeWindow(night, new Date("2026-05-09T05:59:00Z")), "Saturday 05:59 is Friday night");
    assert.ok(!inTimeWindow(night, new Date("2026-05-08T05:00:00Z")), "Friday 05:00 is Thursday night");
    const weekend = parseTimeWindow({ days: ["fri-mon"] });
    assert.ok(inTimeWindow(weekend, new Date("2026-05-10T12:00:00Z")), "Sunday");
    assert.ok(!inTimeWindow(weekend, new Date("2026-05-06T12:00:00Z")), "Wednesday");
  });

  it("rejects bad days, hours and zones with the sub-key", () => {
    assert.throws(
      () => parseTimeWindow({ days: ["mon-fry"] }),
      (e: Error & { key?: string }) => e.key === "days",
    );
    assert.throws(
      () => parseTimeWindow({ between: "9-18" }),
      (e: Error & { key?: string }) => e.key === "between",
    );
    assert.throws(() => parseTimeWindow({ between: "09:60-10:00" }), /HH:MM/);
    assert.throws(() => parseTimeWindow({ tz: "Mars/Olympus" }), /unknown time zone/);
    assert.throws(() => parseTimeWindow({ weekdays: "mon" }), /unknown key/);
  });
});

describe("parsePolicy()", () => {
  it("reads the documented example", () => {
    const policy = parsePolicy({
      default: "deny",
      enforce_on_reload: true,
      rules: [
        { name: "no-interns-on-prod", deny: { user: "intern*", database: "prod" } },
        { allow: { source: ["10.0.0.0/8", "::1"], tls: true, application_name: ["psql", "app-*"] } },
      ],
    });
    assert.equal(policy.default, "deny");
    assert.equal(policy.enforceOnReload, true);
    assert.deepEqual(policy.rules.map((r) => [r.label, r.action]), [["no-interns-on-prod", "deny"], [
      "rules[1]",
      "allow",
    ]]);
  });

  it("names the path of a bad value", () => {
    const pathOf = (raw: unknown) => {
      try {
        parsePolicy(raw);
      } catch (error) {
        const first = error instanceof SettingErrors ? error.errors[0] : error;
        assert.ok(first instanceof SettingError, String(error));
        return first.path.join(".") + ": " + first.message;
      }
      assert.fail("no error");
    };
    assert.match(
      pathOf({ rules: [{ allow: {} }, { deny: { source: "10.0.0.0/40" } }] }),
      /^rules\.1\.deny\.source: prefix length/,
    );
    assert.match(pathOf({ rules: [{ allow: { usr: "x" } }] }), /^rules\.0\.allow\.usr: unknown match field/);
    assert.match(pathOf({ rules: [{ allow: {}, deny: {} }] }), /^rules\.0\.deny: a rule takes exactly one/);
    assert.match(pathOf({ rules: [{ name: "x" }] }), /^rules\.0: a rule needs allow: or deny:/);
    assert.match(pathOf({ default: "maybe" }), /^default: expected allow or deny/);
    assert.match(
      pathOf({ rules: [{ deny: { tls: "yes" } }] }),
      /^rules\.0\.deny\.tls: expected true or false/,
    );
    assert.match(
      pathOf({ rules: [{ deny: { time: { days: "someday" } } }] }),
      /^rules\.0\.deny\.time\.days: /,
    );
  });
});

describe("evaluatePolicy()", () => {
  const policy = parsePolicy({
    default: "allow",
    rules: [
      { name: "no-interns-on-prod", deny: { user: "intern*", database: "prod" } },
      { name: "office-only", deny: { application_name: "batch-*", time: { days: ["sat-sun"] } } },
      { name: "tls-from-outside", deny: { source: "0.0.0.0/0", tls: false, user: "remote_*" } },
      { allow: { source: "10.0.0.0/8" } },
      { deny: {} },
    ],
  });

  it("takes the first rule whose every field matches", () => {
    assert.equal(
      evaluatePolicy(policy, facts({ user: "intern7", database: "prod" })).label,
      "no-interns-on-prod",
    );
    assert.equal(evaluatePolicy(policy, facts({ user: "intern7", database: "prod" })).action, "deny");
    assert.equal(
      evaluatePolicy(policy, facts({ user: "intern7", database: "dev" })).label,
      "rules[3]",
      "one field alone is not enough",
    );
    assert.equal(
      evaluatePolicy(policy, facts({ applicationName: "batch-x", now: new Date("2026-05-09T10:00:00Z") }))
        .label,
      "office-only",
    );
    assert.equal(evaluatePolicy(policy, facts({ applicationName: "batch-x" })).action, "allow", "weekday");
    assert.equal(evaluatePolicy(policy, facts({ user: "remote_bob" })).label, "tls-from-outside");
    assert.equal(
      evaluatePolicy(policy, facts({ user: "remote_bob", tls: true })).label,
      "rules[3]",
      "tls: false does not match a TLS session",
    );
    const outside = evaluatePolicy(policy, facts({ source: "192.0.2.1" }));
    assert.deepEqual([outside.label, outside.action], ["rules[4]", "deny"]);
    assert.equal(evaluatePolicy(parsePolicy({ default: "deny" }), facts()).label, "default");
    assert.equal(evaluatePolicy(parsePolicy({ default: "deny" }), facts()).action, "deny");
  });

  it("explainDecision() says which rule decides and why each earlier one did not", () => {
    const lines = explainDecision(policy, facts({ user: "alice", database: "prod", source: "10.1.2.3" }));
    const text = lines.join("\n");
    assert.match(
      text,
      /rules\[0\] "no-interns-on-prod" \(deny\): skipped\n {4}does not match: user "alice" vs "intern\*"/,
    );
    assert.match(text, /rules\[3\] \(allow\): MATCHES\n {4}matches: source 10\.1\.2\.3 is in 10\.0\.0\.0\/8/);
    assert.equal(lines.at(-1), "decision: ALLOW by rules[3]");
    assert.ok(!text.includes("rules[4]"), "rules after the deciding one are not evaluated");
  });
});

describe("replication connections", () => {
  it("an allow rule that does not name replication does not admit one; deny rules still apply", () => {
    const policy = parsePolicy({
      default: "deny",
      rules: [
        { name: "no-interns", deny: { user: "intern*" } },
        { name: "app", allow: { database: ["app", "intern"] } },
        { name: "wal", allow: { user: "repl", replication: true } },
        { name: "decoding", allow: { user: "repl", replication: ["database"] } },
      ],
    });
    const decide = (over: Partial<PolicyFacts>) => evaluatePolicy(policy, facts(over));
    assert.equal(decide({ database: "app" }).label, "app", "an ordinary session");
    assert.deepEqual(
      [decide({ user: "alice", database: "app", replication: "database" }).label, decide({ user: "alice", database: "app", replication: "database" }).action],
      ["default", "deny"],
      "logical replication into app is not an ordinary session of app",
    );
    assert.equal(decide({ user: "alice", database: "", replication: "true" }).action, "deny");
    assert.equal(decide({ user: "repl", database: "", replication: "true" }).label, "wal");
    assert.equal(decide({ user: "repl", database: "app", replication: "database" }).label, "decoding");
    assert.equal(decide({ user: "repl", database: "app" }).label, "app", "replication: true does not match ordinary sessions");
    assert.equal(decide({ user: "intern1", database: "", replication: "true" }).label, "no-interns");
    const open = parsePolicy({ default: "allow", rules: [{ deny: { user: "intern*" } }] });
    assert.equal(evaluatePolicy(open, facts({ replication: "true" })).action, "allow", "default allow, no rule matched");
    const text = explainDecision(policy, facts({ user: "alice", database: "app", replication: "database" })).join("\n");
    assert.match(text, /replication=database/);
    assert.match(text, /rules\[1\] "app" \(allow\): skipped\n {4}matches: database "app" vs any of "app", "intern"\n {4}does not match: replication is database, and only a rule naming replication allows it/);
  });

  it("parsePolicy() reads replication: true, false, database or a list, and names a bad value", () => {
    const rules = parsePolicy({
      rules: [
        { allow: { replication: true } },
        { allow: { replication: "database" } },
        { allow: { replication: [true, "database", false] } },
      ],
    }).rules;
    assert.deepEqual(rules.map((rule) => rule.match.replication), [["true"], ["database"], ["true", "database", "false"]]);
    assert.throws(
      () => parsePolicy({ rules: [{ allow: { replication: "yes" } }] }),
      (error: unknown) => {
        const first = error instanceof SettingErrors ? error.errors[0] : error;
        assert.ok(first instanceof SettingError);
        assert.equal(first.path.join("."), "rules.0.allow.replication");
        assert.match(first.message, /expected true \(physical\), database \(logical\), false/);
        return true;
      },
    );
  });
});
