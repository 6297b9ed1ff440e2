/**
 * deploy/grafana/pgrelay.json and deploy/prometheus/pgrelay.rules.yml against a real pgrelay: promtool
 * accepts a real scrape of /metrics (`check metrics`), the rules (`check rules`) and their unit tests
 * (`test rules`), every dashboard expression parses as PromQL, and every metric either of them uses is one
 * pgrelay exports. The certificate expiry metric follows the certificate file across a SIGHUP reload.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { earliestNotAfter } from "../../src/host/certificate_expiry.ts";
import { runPsql } from "../support/clients.ts";
import { MAX_CONNECTIONS, type ObservedPgrelay, startObservedPgrelay } from "../support/observed_pgrelay.ts";
import { PROJECT_ROOT } from "../support/pgrelay.ts";
import { runProcess } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const DASHBOARD = join(PROJECT_ROOT, "deploy", "grafana", "pgrelay.json");
const RULES = join(PROJECT_ROOT, "deploy", "prometheus", "pgrelay.rules.yml");
const RULE_TESTS = join(PROJECT_ROOT, "deploy", "prometheus", "pgrelay.rules.test.yml");

/** The sample names a family of this type produces. */
const samplesOf = (name: string, type: string) =>
  type === "histogram" ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : type === "summary" ? [name, `${name}_sum`, `${name}_count`] : [name];

/** Every sample name a Prometheus text exposition declares (from its `# TYPE` lines). */
function exportedNames(scrape: string): Set<string> {
  const names = new Set<string>();
  for (const match of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) for (const name of samplesOf(match[1]!, match[2]!)) names.add(name);
  return names;
}

/** The pgrelay metric names a PromQL expression uses (string literals removed first, so label values never count). */
function metricNamesIn(expr: string): string[] {
  const code = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  return [...code.matchAll(/\bpgrelay_[A-Za-z0-9_:]*/g)].map((match) => match[0]);
}

interface Panel {
  title?: string;
  type?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

function dashboardExpressions(dashboard: { panels: Panel[]; templating?: { list: { query?: unknown; definition?: string }[] } }) {
  const exprs: { where: string; expr: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) if (target.expr) exprs.push({ where: `panel "${panel.title}"`, expr: target.expr });
      walk(panel.panels ?? []);
    }
  };
  walk(dashboard.panels);
  return exprs;
}

/** Grafana's variables replaced by values PromQL accepts, so promtool can parse the expression. */
const withoutVariables = (expr: string) =>
  expr.replaceAll("$__rate_interval", "5m").replaceAll("$__interval", "1m").replaceAll("$__range", "1h").replace(/\$\{?(\w+)\}?/g, ".*");

function promtool(args: string[], input?: string) {
  return runProcess("promtool", args, { timeoutMs: 60_000, ...(input === undefined ? {} : { input }) });
}

describe("Grafana dashboard and Prometheus rules", () => {
  let observed: ObservedPgrelay;
  let scrape = "";

  before(async () => {
    observed = await startObservedPgrelay();
    await waitFor(async () => (await observed.get("/readyz")).status === 200, "the route's host to pass its health check", 30_000);
    // Real traffic, so the histograms, counters and per-route series have samples.
    const { user, password } = observed.pg.users.superuser;
    const psql = await runPsql(["-c", "SELECT 1", "-c", "BEGIN", "-c", "SELECT pg_sleep(0.01)", "-c", "COMMIT"], {
      host: "127.0.0.1",
      port: observed.relay.address.port,
      user,
      password,
      database: "postgres",
      env: { PGSSLMODE: "require", PGCHANNELBINDING: "disable", PGAPPNAME: "dashboards-test" },
    });
    assert.equal(psql.code, 0, psql.stderr);
    const response = await observed.get("/metrics");
    assert.equal(response.status, 200);
    scrape = await response.text();
  });
  after(async () => {
    await observed?.stop();
  });

  it("promtool check metrics accepts a real scrape of /metrics", async () => {
    assert.match(scrape, /^pgrelay_queries_total [1-9]/m, "the scrape counts the test's queries");
    const result = await promtool(["check", "metrics"], scrape);
    assert.equal(result.code, 0, `promtool check metrics:\n${result.stdout}${result.stderr}`);
  });

  it("exports the certificates' expiry, the route's readiness and limits.max_connections", async () => {
    const notAfter = (pem: string) => Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);
    const certPem = await readFile(observed.files.cert, "utf8");
    const caPem = await readFile(observed.files.ca, "utf8");
    assert.match(scrape, new RegExp(`^pgrelay_tls_certificate_expiry_timestamp_seconds\\{certificate="tls.cert"\\} ${notAfter(certPem)}$`, "m"));
    assert.match(scrape, new RegExp(`^pgrelay_tls_certificate_expiry_timestamp_seconds\\{certificate="clusters.main.tls.ca"\\} ${notAfter(caPem)}$`, "m"));
    assert.match(scrape, /^pgrelay_route_ready\{route="default",cluster="main",target="primary"\} 1$/m);
    assert.match(scrape, new RegExp(`^pgrelay_limit_slots_max\\{limit="max_connections"\\} ${MAX_CONNECTIONS}$`, "m"));
  });

  it("earliestNotAfter() takes the earliest certificate of a chain", async () => {
    const leaf = await readFile(observed.files.cert, "utf8");
    const ca = await readFile(observed.files.ca, "utf8");
    const seconds = (pem: string) => Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);
    assert.equal(earliestNotAfter(leaf + ca), Math.min(seconds(leaf), seconds(ca)));
    assert.equal(earliestNotAfter(ca + leaf), Math.min(seconds(leaf), seconds(ca)));
    assert.equal(earliestNotAfter("no certificate here"), undefined);
  });

  it("promtool check rules and promtool test rules pass on deploy/prometheus", async () => {
    const check = await promtool(["check", "rules", RULES]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /SUCCESS: 7 rules found/);
    const unit = await promtool(["test", "rules", RULE_TESTS]);
    assert.equal(unit.code, 0, unit.stdout + unit.stderr);
    assert.match(unit.stdout, /SUCCESS/);
  });

  it("every dashboard expression parses as PromQL (promtool check rules on them as recording rules)", async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, "utf8"));
    const exprs = dashboardExpressions(dashboard);
    assert.ok(exprs.length >= 25, `${exprs.length} expressions`);
    const file = join(observed.dir, "dashboard_exprs.rules.yml");
    const rules = exprs.map(({ expr }, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(withoutVariables(expr))}\n`);
    await writeFile(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join("")}`);
    const check = await promtool(["check", "rules", file]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));
  });

  it("every metric the dashboard and the rules use is one pgrelay exports", async () => {
    const exported = exportedNames(scrape);
    const dashboard = JSON.parse(await readFile(DASHBOARD, "utf8"));
    const rules = parseYaml(await readFile(RULES, "utf8")) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const uses = [
      ...dashboardExpressions(dashboard),
      ...(dashboard.templating?.list ?? []).flatMap((variable: { name: string; definition?: string }) =>
        variable.definition ? [{ where: `variable ${variable.name}`, expr: variable.definition }] : []
      ),
      ...rules.groups.flatMap((group) => group.rules.map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr }))),
    ];
    const used = new Set<string>();
    const unknown: string[] = [];
    for (const { where, expr } of uses) {
      for (const name of metricNamesIn(expr)) {
        used.add(name);
        if (!exported.has(name)) unknown.push(`${where}: ${name}`);
      }
    }
    assert.deepEqual(unknown, [], "metric names pgrelay does not export");
    // The list: each of these is charted or alerted on.
    for (
      const name of [
        "pgrelay_client_connections_active", "pgrelay_queries_total", "pgrelay_query_duration_seconds_bucket", "pgrelay_bytes_total",
        "pgrelay_pool_wait_seconds_bucket", "pgrelay_pool_pinned_total", "pgrelay_upstream_up", "pgrelay_upstream_role",
        "pgrelay_upstream_lag_bytes", "pgrelay_audit_events_dropped_total", "pgrelay_route_ready", "pgrelay_limit_slots_max",
        "pgrelay_tls_certificate_expiry_timestamp_seconds",
      ]
    ) assert.ok(used.has(name), `${name} is used`);
  });

  it("a SIGHUP reload re-reads the certificate: the expiry metric follows the renewed file", async () => {
    const renewed = join(observed.dir, "renewed");
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "9",
      "-subj", "/CN=pgrelay.test", "-keyout", `${renewed}.key`, "-out", `${renewed}.crt`,
    ], { stdio: "ignore", env: { ...process.env, OPENSSL_CONF: "/dev/null" } });
    const pem = await readFile(`${renewed}.crt`, "utf8");
    await writeFile(observed.files.key, await readFile(`${renewed}.key`));
    await writeFile(observed.files.cert, pem);
    const expected = Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);
    const before = await (await observed.get("/metrics")).text();
    assert.doesNotMatch(before, new RegExp(`certificate="tls.cert"\\} ${expected}$`, "m"));
    process.kill(observed.relay.pid, "SIGHUP");
    await waitFor(async () => (await (await observed.get("/metrics")).text()).includes(
      `pgrelay_tls_certificate_expiry_timestamp_seconds{certificate="tls.cert"} ${expected}\n`,
    ), "the renewed certificate's expiry in /metrics", 20_000);
    // 9 days: inside the 14 days the alert warns about.
    assert.ok(expected - Date.now() / 1000 < 14 * 86400);
  });
});
