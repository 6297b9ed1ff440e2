import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { configLayerFromYaml } from "../../src/config/load.ts";
import { buildConfig } from "../../src/host/build_config.ts";
import { parseAddress, parseDuration, parseSize } from "../../src/config/units.ts";
import { formatIssue } from "../../src/config/config_error.ts";

describe("config units", () => {
  it("parseAddress() reads IPv4, names and bracketed IPv6", () => {
    assert.deepEqual(parseAddress("127.0.0.1:6432"), { hostname: "127.0.0.1", port: 6432 });
    assert.deepEqual(parseAddress("db.internal:5432"), { hostname: "db.internal", port: 5432 });
    assert.deepEqual(parseAddress("[::1]:0"), { hostname: "::1", port: 0 });
    for (const bad of ["127.0.0.1", ":5432", "host:99999", "::1:5432", "host:port"]) {
      assert.throws(() => parseAddress(bad), /expected HOST:PORT/, bad);
    }
  });

  it("parseDuration() and parseSize() take units and plain numbers", () => {
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("2m"), 120_000);
    assert.equal(parseDuration(3), 3000);
    assert.throws(() => parseDuration("soon"), /expected a duration/);
    assert.equal(parseSize("64KiB"), 65536);
    assert.equal(parseSize("10MB"), 10_000_000);
    assert.equal(parseSize(123), 123);
    assert.throws(() => parseSize("-1"), /expected a size/);
  });
});

describe("buildConfig()", () => {
  it("layers flags over the file over the defaults", () => {
    const file = configLayerFromYaml("listen: 0.0.0.0:7000\nupstream: db:5433\nstartup_timeout: 5s\n", "pgrelay.yaml");
    assert.deepEqual(file.issues, []);
    const { config, issues } = buildConfig([file.layer!, { values: { upstream: "other:6000" } }]);
    assert.deepEqual(issues, []);
    assert.deepEqual(config.listen, { hostname: "0.0.0.0", port: 7000 });
    assert.deepEqual(config.upstream, { hostname: "other", port: 6000 });
    assert.equal(config.startupTimeoutMs, 5000);
    assert.equal(config.connectTimeoutMs, 10_000);
  });

  it("reports every bad key with its file and line", () => {
    const text = "listen: 127.0.0.1:6432\nupstrem: db:5432\nstartup_timeout: forever\nlog_level: loud\n";
    const file = configLayerFromYaml(text, "bad.yaml");
    const { issues } = buildConfig([file.layer!]);
    assert.deepEqual(issues.map(formatIssue), [
      "bad.yaml:2: upstrem: unknown key (known keys: listen, upstream, startup_timeout, connect_timeout, max_message_size, log_level, admin, drain_timeout, workers, tls, upstream_tls, auth, policy, limits, audit, clusters, routes, routing, pool, max_server_connections)",
      "bad.yaml:3: startup_timeout: expected a duration such as \"500ms\", \"60s\" or \"2m\", got \"forever\"",
      "bad.yaml:4: log_level: expected one of debug, info, warn, error, got \"loud\"",
    ]);
  });

  it("names the flag when a flag value is bad", () => {
    const { issues } = buildConfig([{ values: { listen: "nowhere" } }]);
    assert.equal(issues.length, 1);
    assert.match(formatIssue(issues[0]!), /^--listen: expected HOST:PORT/);
  });

  it("reports YAML syntax errors and non-mapping documents with a line", () => {
    const broken = configLayerFromYaml("listen: [127.0.0.1\nupstream: x\n", "broken.yaml");
    assert.equal(broken.layer, undefined);
    assert.match(formatIssue(broken.issues[0]!), /^broken\.yaml:\d+: \(syntax\): /);
    const list = configLayerFromYaml("- a\n- b\n", "list.yaml");
    assert.match(formatIssue(list.issues[0]!), /^list\.yaml:1: \(top level\): expected a mapping/);
  });

  it("rejects a max_message_size below the startup packet limit", () => {
    const { issues } = buildConfig([{ values: { max_message_size: "1KB" }, source: "x.yaml" }]);
    assert.match(formatIssue(issues[0]!), /max_message_size: must be at least 10000 bytes/);
  });

  it("reads policy, limits and audit, and reports every bad rule with its line", () => {
    const good = configLayerFromYaml([
      "policy:",
      "  default: deny",
      "  rules:",
      "    - name: no-interns-on-prod",
      "      deny: { user: \"intern*\", database: \"prod\" }",
      "    - allow: { source: \"10.0.0.0/8\", tls: true }",
      "limits: { max_connections: 1000, per_user: 100, connect_rate: { per_source: 20, burst: 40 }, bandwidth_per_session: \"10MB/s\" }",
      "audit: { path: \"-\", queries: true, max_query_length: 4096, redact_literals: false }",
      "",
    ].join("\n"), "good.yaml");
    const built = buildConfig([good.layer!]);
    assert.deepEqual(built.issues, []);
    assert.equal(built.config.policy.default, "deny");
    assert.deepEqual(built.config.policy.rules.map((rule) => rule.label), ["no-interns-on-prod", "rules[1]"]);
    assert.equal(built.config.limits.bandwidthPerSession, 10_000_000);
    assert.equal(built.config.audit?.maxQueryLength, 4096);

    const bad = configLayerFromYaml([
      "policy:",
      "  rules:",
      "    - allow: { user: alice }",
      "    - name: broken",
      "      deny: { source: \"10.0.0.0/33\" }",
      "    - deny:",
      "        time: { days: [mon-fry] }",
      "limits:",
      "  per_user: lots",
      "audit: { path: /tmp/x, querys: true }",
      "",
    ].join("\n"), "bad.yaml");
    assert.deepEqual(buildConfig([bad.layer!]).issues.map(formatIssue), [
      'bad.yaml:5: policy.rules[1].deny.source: prefix length must be 0 to 32 in "10.0.0.0/33"',
      'bad.yaml:7: policy.rules[2].deny.time.days: expected day names or ranges such as mon, sat-sun or mon-fri, got "mon-fry"',
      'bad.yaml:9: limits.per_user: expected a whole number of at least 0, got "lots"',
      "bad.yaml:10: audit.querys: unknown key (known keys: path, queries, max_query_length, redact_literals)",
    ]);
  });

  it("reads auth.upstream_require_auth as a list or a libpq-style string, default scram-sha-256 only", () => {
    assert.deepEqual(buildConfig([]).config.auth.upstreamRequireAuth, ["scram-sha-256"]);
    const list = configLayerFromYaml("auth: { mode: scram, file: /x, upstream_require_auth: [scram-sha-256, none] }\n", "a.yaml");
    assert.deepEqual(buildConfig([list.layer!]).config.auth.upstreamRequireAuth, ["scram-sha-256", "none"]);
    const text = configLayerFromYaml("auth: { upstream_require_auth: \"password, scram-sha-256\" }\n", "a.yaml");
    assert.deepEqual(buildConfig([text.layer!]).config.auth.upstreamRequireAuth, ["password", "scram-sha-256"]);
    const bad = (value: string) => buildConfig([configLayerFromYaml(`auth: { upstream_require_auth: ${value} }\n`, "b.yaml").layer!]).issues.map(formatIssue);
    assert.deepEqual(bad("[md5]"), ["b.yaml:1: auth.upstream_require_auth: md5 cannot be allowed: pgrelay never answers md5 (use scram-sha-256)"]);
    assert.deepEqual(bad("[gss]"), ['b.yaml:1: auth.upstream_require_auth: expected a list of scram-sha-256, password, none, got "gss"']);
    assert.deepEqual(bad('"!password"'), ['b.yaml:1: auth.upstream_require_auth: negated methods ("!password") are not supported: list the allowed ones']);
    assert.deepEqual(bad("[]"), ["b.yaml:1: auth.upstream_require_auth: expected a list of scram-sha-256, password, none, got []"]);
  });

  it("reads pool: per route and at the top level, and max_server_connections", () => {
    const routed = configLayerFromYaml([
      "auth: { mode: scram, file: /etc/pgrelay/userlist.txt }",
      "max_server_connections: 90",
      "clusters:",
      "  main: { hosts: [\"db1:5432\"] }",
      "routes:",
      "  - name: app",
      "    cluster: main",
      "    pool: { mode: transaction, size: 20, wait_timeout: 5s }",
      "",
    ].join("\n"), "pool.yaml");
    const { config, issues } = buildConfig([routed.layer!]);
    assert.deepEqual(issues, []);
    assert.equal(config.maxServerConnections, 90);
    assert.equal(config.routes[0]!.pool?.waitTimeoutMs, 5000);
    assert.equal(config.pool, undefined);
    const top = buildConfig([configLayerFromYaml("auth: { mode: scram, file: /x }\npool: { mode: session, size: 4 }\n", "top.yaml").layer!]);
    assert.deepEqual(top.issues, []);
    assert.equal(top.config.pool?.resetQuery, "DISCARD ALL");
    assert.equal(buildConfig([]).config.maxServerConnections, undefined, "no cap by default");
  });

  it("refuses pooling with auth.mode relay, and says why, with file, line and key", () => {
    const text = [
      "clusters:",
      "  main: { hosts: [\"db1:5432\"] }",
      "routes:",
      "  - name: plain",
      "    match: { user: plain }",
      "    cluster: main",
      "  - name: app",
      "    cluster: main",
      "    pool:",
      "      mode: transaction",
      "      size: 20",
      "",
    ].join("\n");
    const issues = buildConfig([configLayerFromYaml(text, "relay.yaml").layer!]).issues.map(formatIssue);
    assert.equal(issues.length, 1);
    assert.match(
      issues[0]!,
      /^relay\.yaml:10: routes\[1\]\.pool: pooling needs pgrelay to log in to servers itself: set auth\.mode: scram /,
    );
    const top = buildConfig([configLayerFromYaml("upstream: db:5432\npool: { mode: session, size: 4 }\n", "top.yaml").layer!]);
    assert.match(top.issues.map(formatIssue).join("\n"), /^top\.yaml:2: pool: pooling needs pgrelay to log in to servers itself/);
  });

  it("reports a bad pool key with its line, and a top-level pool: beside routes:", () => {
    const text = [
      "auth: { mode: scram, file: /x }",
      "pool: { mode: transaction, size: 4 }",
      "clusters:",
      "  main: { hosts: [\"db1:5432\"] }",
      "routes:",
      "  - name: app",
      "    cluster: main",
      "    pool:",
      "      mode: transaction",
      "      size: 20",
      "      max_wait: 10",
      "max_server_connections: none",
      "",
    ].join("\n");
    assert.deepEqual(buildConfig([configLayerFromYaml(text, "bad.yaml").layer!]).issues.map(formatIssue), [
      "bad.yaml:11: routes[0].pool.max_wait: unknown key (known keys: mode, size, min, reserve, reserve_timeout, wait_timeout, max_waiting, idle_timeout, lifetime, reset_query, on_pin)",
      'bad.yaml:12: max_server_connections: expected a whole number from 1 to 1000000, got "none"',
      "bad.yaml:2: pool: the top-level pool: applies only to the upstream: form; with routes:, put pool: in each route that pools",
    ]);
  });

  it("reads upstream_tls.negotiation (libpq's sslnegotiation), default postgres; direct needs require or stricter", () => {
    assert.equal(buildConfig([]).config.upstreamTls.negotiation, "postgres");
    const issues = (yaml: string) => buildConfig([configLayerFromYaml(yaml, "t.yaml").layer!]).issues.map(formatIssue);
    const direct = configLayerFromYaml("upstream_tls: { mode: require, negotiation: direct }\n", "t.yaml");
    const built = buildConfig([direct.layer!]);
    assert.deepEqual(built.issues, []);
    assert.equal(built.config.upstreamTls.negotiation, "direct");
    assert.deepEqual(issues("upstream_tls: { negotiation: direct }\n"), [
      "upstream_tls: negotiation direct needs mode require, verify-ca or verify-full, not disable (direct TLS never falls back to plaintext)",
    ]);
    assert.deepEqual(issues("upstream_tls: { mode: prefer, negotiation: direct }\n"), [
      "upstream_tls: negotiation direct needs mode require, verify-ca or verify-full, not prefer (direct TLS never falls back to plaintext)",
    ]);
    assert.match(issues("upstream_tls: { mode: require, negotiation: gssapi }\n")[0] ?? "", /upstream_tls: expected one of postgres, direct, got "gssapi"/);
  });
});
