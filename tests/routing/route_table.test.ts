import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SettingError, SettingErrors } from "../../src/config/config_error.ts";
import { parseRoutes } from "../../src/routing/route_schema.ts";
import { type RouteFacts, RouteTable } from "../../src/routing/route_table.ts";

const facts = (over: Partial<RouteFacts> = {}): RouteFacts => ({
  user: "alice",
  database: "app",
  applicationName: "psql",
  replication: "false",
  source: "10.1.2.3",
  tls: false,
  now: new Date("2026-05-04T10:00:00Z"),
  serverName: undefined,
  ...over,
});

const table = (raw: unknown, clusters?: string[]) =>
  new RouteTable(parseRoutes(raw, clusters && new Set(clusters)));

describe("route table", () => {
  const routes = table([
    { name: "reports", match: { application_name: "report*" }, cluster: "main", target: "standby" },
    {
      name: "analytics-sni",
      match: { server_name: "analytics.*.example.com", tls: true },
      cluster: "dw",
      target: "any",
    },
    {
      name: "office",
      match: { source: "192.168.0.0/16", user: ["bob", "carol"] },
      cluster: "main",
      target: "prefer-standby",
    },
    { name: "wal", match: { replication: true }, cluster: "main", target: "primary" },
    { name: "default", cluster: "main", target: "primary" },
  ], ["main", "dw"]);

  it("routes by the first rule whose every field matches", () => {
    const pick = (over: Partial<RouteFacts>) => {
      const choice = routes.route(facts(over));
      return choice && [choice.route.label, choice.cluster, choice.target];
    };
    assert.deepEqual(pick({ applicationName: "report-nightly" }), ["reports", "main", "standby"]);
    assert.deepEqual(pick({}), ["default", "main", "primary"]);
    assert.deepEqual(pick({ source: "192.168.4.5", user: "bob" }), ["office", "main", "prefer-standby"]);
    assert.deepEqual(pick({ source: "192.168.4.5", user: "alice" }), ["default", "main", "primary"]);
    assert.deepEqual(pick({ source: "::ffff:192.168.4.5", user: "carol" }), [
      "office",
      "main",
      "prefer-standby",
    ]);
  });

  it("matches server_name (SNI) case-insensitively, and never without one", () => {
    const pick = (over: Partial<RouteFacts>) => routes.route(facts(over))?.route.label;
    assert.equal(pick({ tls: true, serverName: "analytics.eu.example.com" }), "analytics-sni");
    assert.equal(pick({ tls: true, serverName: "Analytics.EU.Example.COM" }), "analytics-sni");
    assert.equal(pick({ tls: true, serverName: "db.example.com" }), "default");
    assert.equal(pick({ tls: true, serverName: undefined }), "default");
    assert.equal(
      pick({ tls: false, serverName: "analytics.eu.example.com" }),
      "default",
      "every field must match",
    );
  });

  it("routes replication connections by their fields, without policy's allow guard", () => {
    assert.equal(routes.route(facts({ replication: "true" }))?.route.label, "wal");
    assert.equal(routes.route(facts({ replication: "database" }))?.route.label, "default");
    assert.equal(
      routes.route(facts({ replication: "true", applicationName: "report-x" }))?.route.label,
      "reports",
      "a rule that does not name replication still routes a replication connection",
    );
  });

  it("returns nothing when no rule matches", () => {
    const narrow = table([{ match: { database: "prod" }, cluster: "main", target: "primary" }]);
    assert.equal(narrow.route(facts()), undefined);
    assert.equal(narrow.route(facts({ database: "prod" }))?.route.label, "routes[0]");
    assert.equal(new RouteTable([]).route(facts()), undefined);
  });

  it("explains every rule it looked at", () => {
    const { choice, trace } = routes.explain(facts({ tls: true, serverName: "db.example.com" }));
    assert.equal(choice?.route.label, "default");
    assert.deepEqual(trace.map((t) => [t.rule.label, t.matched]), [
      ["reports", false],
      ["analytics-sni", false],
      ["office", false],
      ["wal", false],
      ["default", true],
    ]);
    assert.match(
      trace[1]!.reasons[0]!,
      /does not match: server_name "db.example.com" vs "analytics.\*.example.com"/,
    );
    assert.match(trace[0]!.reasons[0]!, /does not match: application_name "psql" vs "report\*"/);
    assert.deepEqual(trace[4]!.reasons, ["matches: the rule has no fields, so it matches everyone"]);
  });
});

describe("routes: schema", () => {
  const errorsOf = (raw: unknown, clusters?: string[]): [string, string][] => {
    try {
      parseRoutes(raw, clusters && new Set(clusters));
    } catch (error) {
      const list = error instanceof SettingErrors
        ? error.errors
        : error instanceof SettingError
        ? [error]
        : [];
      if (list.length === 0) throw error;
      return list.map((e) => [e.path.map(String).join("."), e.message]);
    }
    assert.fail("expected an error");
  };

  it("parses names, clusters, targets and match fields (target defaults to any)", () => {
    const [rule] = parseRoutes([{ cluster: "main", match: { user: "a*", server_name: ["X.example.com"] } }]);
    assert.equal(rule!.target, "any");
    assert.equal(rule!.label, "routes[0]");
    assert.equal(rule!.match.user?.[0]?.text, "a*");
    assert.equal(rule!.serverName?.[0]?.text, "X.example.com");
    assert.deepEqual(parseRoutes(null), []);
  });

  it("names every bad route with its path, using the policy's messages for match fields", () => {
    const errors = errorsOf([
      { cluster: "nope", target: "primary" },
      { cluster: "main", target: "master" },
      { cluster: "main", match: { source: "10.0.0.0/33" } },
      { cluster: "main", match: { colour: "red" } },
      { cluster: "main", match: { server_name: [] } },
      { target: "any" },
      { cluster: "main", extra: 1 },
    ], ["main"]);
    assert.deepEqual(errors.map(([path]) => path), [
      "0.cluster",
      "1.target",
      "2.match.source",
      "3.match.colour",
      "4.match.server_name",
      "5",
      "6.extra",
    ]);
    assert.match(errors[0]![1], /unknown cluster "nope" \(clusters: main\)/);
    assert.match(
      errors[1]![1],
      /expected one of any, read-write, read-only, primary, standby, prefer-standby/,
    );
    assert.match(errors[2]![1], /prefix length must be 0 to 32/);
    assert.match(errors[3]![1], /unknown match field \(known fields: server_name, user,/);
  });

  it("rejects a route after one that matches every session", () => {
    const errors = errorsOf([
      { name: "all", cluster: "main" },
      { name: "late", cluster: "main", match: { user: "x" } },
    ]);
    assert.deepEqual(errors, [["1", "this route can never match: all before it matches every session"]]);
    assert.doesNotThrow(() =>
      parseRoutes([{ cluster: "main", match: { server_name: "a.example.com" } }, { cluster: "main" }])
    );
  });
});
