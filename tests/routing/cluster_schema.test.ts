import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SettingError, SettingErrors } from "../../src/config/config_error.ts";
import {
  checkRoutesAgainstClusters,
  parseClusters,
  singleUpstream,
} from "../../src/routing/cluster_schema.ts";
import { parseRoutes } from "../../src/routing/route_schema.ts";
import { RouteTable } from "../../src/routing/route_table.ts";

const errorsOf = (raw: unknown): [string, string][] => {
  try {
    parseClusters(raw);
  } catch (error) {
    const list = error instanceof SettingErrors ? error.errors : error instanceof SettingError ? [error] : [];
    if (list.length === 0) throw error;
    return list.map((e) => [e.path.map(String).join("."), e.message]);
  }
  assert.fail("expected an error");
};

describe("clusters: schema", () => {
  it("parses the issue's example", () => {
    const [main] = parseClusters({
      main: {
        hosts: ["db1.internal:5432", "db2.internal:5432", "[::1]:5433"],
        health: { interval: "1s", timeout: "500ms", user: "pgrelay_health", database: "postgres" },
        max_lag: "16MB",
        balance: "least_connections",
        tls: { mode: "verify-full", ca: "/etc/pgrelay/db-ca.crt", negotiation: "direct" },
      },
    });
    assert.deepEqual(main, {
      name: "main",
      hosts: ["db1.internal:5432", "db2.internal:5432", "[::1]:5433"],
      health: { intervalMs: 1000, timeoutMs: 500, user: "pgrelay_health", database: "postgres" },
      maxLagBytes: 16_000_000,
      balance: "least_connections",
      tls: {
        mode: "verify-full",
        ca: "/etc/pgrelay/db-ca.crt",
        serverName: undefined,
        negotiation: "direct",
      },
    });
    assert.equal(
      parseClusters({ c: { hosts: ["db:5432"], tls: { mode: "require" } } })[0]!.tls?.negotiation,
      "postgres",
    );
  });

  it("defaults: no health checks, no lag limit, round_robin, the global upstream_tls", () => {
    assert.deepEqual(parseClusters({ solo: { hosts: "db:5432" } }), [{
      name: "solo",
      hosts: ["db:5432"],
      health: undefined,
      maxLagBytes: undefined,
      balance: "round_robin",
      tls: undefined,
    }]);
    assert.deepEqual(parseClusters({ c: { hosts: ["db:5432"], health: { user: "h" } } })[0]!.health, {
      intervalMs: 1000,
      timeoutMs: 1000,
      user: "h",
      database: "postgres",
    });
    assert.deepEqual(parseClusters(undefined), []);
  });

  it("names every bad value with its path", () => {
    const errors = errorsOf({
      a: { hosts: ["db1"] },
      b: { hosts: ["db:5432", "db:5432"] },
      c: { hosts: ["db:5432"], health: { interval: "soon", user: "h" } },
      d: { hosts: ["db:5432"], health: { database: "x" } },
      e: { hosts: ["db:5432"], balance: "fastest" },
      f: { hosts: ["db:5432"], max_lag: "lots" },
      g: { hosts: ["db:5432"], tls: { mode: "verify-ca" } },
      h: { health: { user: "h" } },
      i: { hosts: ["db:5432"], colour: "red" },
      j: { hosts: ["db:5432"], tls: { negotiation: "direct" } },
      k: { hosts: ["db:5432"], tls: { mode: "prefer", negotiation: "direct" } },
      l: { hosts: ["db:5432"], tls: { mode: "require", negotiation: "gssapi" } },
    });
    assert.deepEqual(errors.map(([path]) => path), [
      "a.hosts.0",
      "b.hosts",
      "c.health.interval",
      "d.health",
      "e.balance",
      "f.max_lag",
      "g.tls",
      "h",
      "i.colour",
      "j.tls",
      "k.tls",
      "l.tls.negotiation",
    ]);
    assert.match(errors[0]![1], /expected HOST:PORT/);
    assert.match(errors[1]![1], /db:5432 is listed twice/);
    assert.match(errors[3]![1], /health checks need user:/);
    assert.match(errors[4]![1], /round_robin, random, least_connections/);
    assert.match(errors[6]![1], /mode verify-ca needs ca/);
    assert.match(
      errors[9]![1],
      /negotiation direct needs mode require, verify-ca or verify-full, not disable/,
    );
    assert.match(errors[10]![1], /not prefer \(direct TLS never falls back to plaintext\)/);
    assert.match(errors[11]![1], /expected one of postgres, direct, got "gssapi"/);
  });

  it("checks routes against clusters: unknown cluster, and roles without health checks", () => {
    const clusters = parseClusters({
      checked: { hosts: ["db1:5432"], health: { user: "h" } },
      blind: { hosts: ["db2:5432"] },
    });
    const routes = parseRoutes([
      { match: { user: "a" }, cluster: "checked", target: "primary" },
      { match: { user: "b" }, cluster: "blind", target: "any" },
      { match: { user: "c" }, cluster: "blind", target: "standby" },
      { match: { user: "d" }, cluster: "missing" },
    ]);
    assert.deepEqual(
      checkRoutesAgainstClusters(routes, clusters).map((e) => [e.path.join("."), e.message]),
      [
        [
          "2.target",
          'target standby needs health checks on cluster "blind" (clusters.blind.health.user) to know its hosts\' roles',
        ],
        ["3.cluster", 'unknown cluster "missing" (clusters: checked, blind)'],
      ],
    );
  });

  it("reads upstream: HOST:PORT as one unchecked cluster and one route for everyone", () => {
    const { clusters, routes } = singleUpstream("127.0.0.1:5432");
    assert.deepEqual(clusters.map((c) => [c.name, c.hosts, c.health]), [[
      "upstream",
      ["127.0.0.1:5432"],
      undefined,
    ]]);
    assert.deepEqual(checkRoutesAgainstClusters(routes, clusters), []);
    const choice = new RouteTable(routes).route({
      user: "u",
      database: "d",
      applicationName: "",
      replication: "true",
      source: "",
      tls: false,
      now: new Date(),
      serverName: undefined,
    });
    assert.deepEqual(choice && [choice.cluster, choice.target], ["upstream", "any"]);
  });
});
