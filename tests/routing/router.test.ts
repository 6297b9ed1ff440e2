import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseClusters } from "../../src/routing/cluster_schema.ts";
import { parseRoutes } from "../../src/routing/route_schema.ts";
import { Router, singleUpstreamRouter } from "../../src/routing/router.ts";
import { buildConfig } from "../../src/host/build_config.ts";

const facts = (applicationName: string) => ({
  user: "alice",
  database: "app",
  applicationName,
  replication: "false" as const,
  source: "10.0.0.1",
  tls: false,
  now: new Date(),
  serverName: undefined,
});

const clusters = parseClusters({
  main: { hosts: ["db1:5432", "db2:5432"], health: { user: "health", interval: "1s" } },
});
const routes = parseRoutes([
  { name: "reports", match: { application_name: "report*" }, cluster: "main", target: "standby" },
  { name: "default", cluster: "main", target: "primary" },
]);

describe("Router", () => {
  it("routes facts to a route, its cluster and target", () => {
    const router = new Router({ clusters, routes });
    assert.equal(router.route(facts("report-x"))?.choice.target, "standby");
    assert.equal(router.route(facts("psql"))?.choice.route.label, "default");
    assert.equal(router.route(facts("psql"))?.cluster.settings.name, "main");
  });

  it("is ready only when every route has an eligible host", () => {
    const router = new Router({ clusters, routes });
    assert.deepEqual(router.readiness().ready, false, "no check has answered: no role is known");
    const [db1, db2] = router.clusters.get("main")!.cluster.hosts;
    db1!.recordCheck({ role: "primary", lsn: 100n, timeline: 1 }, new Date());
    assert.deepEqual(router.readiness(), { ready: false, missing: ['reports (cluster "main", target standby)'] });
    db2!.recordCheck({ role: "standby", lsn: 90n, timeline: 1 }, new Date());
    assert.deepEqual(router.readiness(), { ready: true, missing: [] });
    assert.equal(router.records().clusters[0]!.hosts[1]!.lag_bytes, 10);
  });

  it("keeps the hosts' records across a reload (same cluster and address), not others", () => {
    const first = new Router({ clusters, routes });
    const db1 = first.clusters.get("main")!.cluster.hosts[0]!;
    const next = new Router({
      clusters: parseClusters({ main: { hosts: ["db1:5432", "db3:5432"], health: { user: "health" } } }),
      routes,
      previous: first,
    });
    const hosts = next.clusters.get("main")!.cluster.hosts;
    assert.equal(hosts[0], db1);
    assert.notEqual(hosts[1], first.clusters.get("main")!.cluster.hosts[1]);
    assert.equal(hosts[1]!.address, "db3:5432");
  });

  it("the upstream: form is one unchecked host that every session reaches with target any", () => {
    const router = singleUpstreamRouter({ hostname: "::1", port: 5432 }, undefined);
    const routed = router.route(facts("anything"))!;
    assert.equal(routed.choice.target, "any");
    assert.deepEqual(routed.cluster.cluster.hosts.map((host) => host.address), ["[::1]:5432"]);
    assert.equal(router.readiness().ready, true);
  });
});

describe("config: clusters, routes and routing", () => {
  const build = (values: Record<string, unknown>) => buildConfig([{ values }]);

  it("loads clusters, routes and routing.hold_timeout", () => {
    const { config, issues } = build({
      auth: { file: "/etc/pgrelay/userlist.txt" },
      clusters: { main: { hosts: ["db1:5432"], health: { user: "health" } } },
      routes: [{ cluster: "main", target: "primary" }],
      routing: { hold_timeout: "2s" },
    });
    assert.deepEqual(issues, []);
    assert.equal(config.clusters[0]!.name, "main");
    assert.equal(config.routes[0]!.target, "primary");
    assert.equal(config.holdTimeoutMs, 2000);
  });

  it("refuses routes without clusters, clusters without routes, unknown clusters and health without auth.file", () => {
    assert.match(build({ routes: [{ cluster: "main" }] }).issues[0]!.message, /routes need clusters/);
    assert.match(build({ clusters: { main: { hosts: ["db1:5432"] } } }).issues[0]!.message, /clusters need routes/);
    const unknown = build({ clusters: { main: { hosts: ["db1:5432"] } }, routes: [{ cluster: "other" }] }).issues;
    assert.deepEqual(unknown.map((issue) => issue.key), ["routes[0].cluster"]);
    const noFile = build({
      clusters: { main: { hosts: ["db1:5432"], health: { user: "health" } } },
      routes: [{ cluster: "main" }],
    }).issues;
    assert.deepEqual(noFile.map((issue) => issue.key), ["clusters.main.health"]);
    assert.match(build({ routing: { hold: "1s" } }).issues[0]!.message, /unknown key routing.hold/);
  });
});

describe("Router.bind", () => {
  it("counts sessions per host for least_connections, across a reload, and releases once", () => {
    const settings = parseClusters({
      main: { hosts: ["db1:5432", "db2:5432"], health: { user: "health" }, balance: "least_connections" },
    });
    const router = new Router({ clusters: settings, routes });
    const cluster = router.clusters.get("main")!.cluster;
    const [db1, db2] = cluster.hosts;
    for (const host of [db1!, db2!]) host.recordCheck({ role: "standby", lsn: 1n, timeline: 1 }, new Date());
    const release = router.bind(db1!);
    router.bind(db1!);
    const reloaded = new Router({ clusters: settings, routes, previous: router });
    const after = reloaded.clusters.get("main")!.cluster;
    assert.equal(after.hosts[0], db1);
    const first = () => {
      const picked = after.candidates("standby");
      return picked.ok ? picked.hosts[0]!.address : "";
    };
    assert.deepEqual([first(), first()], ["db2:5432", "db2:5432"], "db1 has two sessions");
    release();
    release();
    reloaded.bind(db2!);
    reloaded.bind(db2!);
    assert.equal(first(), "db1:5432", "db1 one session, db2 two");
  });
});
