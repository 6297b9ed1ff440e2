/**
 * src/host/config_keys.ts documents every key (for --help, the README and pgrelay.yaml(5)): here against
 * what the validator accepts. Each documented mapping's keys are the keys its parser lists when it refuses an
 * unknown one, and every documented default, written in the file, gives the config pgrelay has without it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildConfig } from "../../src/host/build_config.ts";
import { CONFIG_KEYS, type ConfigKeyDoc } from "../../src/host/config_keys.ts";
import { CLI_OPTIONS } from "../../src/cli/options.ts";
import { parseCliArgs } from "../../src/cli/args.ts";
import { parseYaml } from "../../src/config/yaml.ts";
import type { Config } from "../../src/host/config_schema.ts";
import { DEFAULT_CANCEL_RATE } from "../../src/limits/limits_schema.ts";

/** The keys the validator names after "known keys:" when `values` holds an unknown one (without prefixes). */
function knownKeys(values: Record<string, unknown>): string[] {
  const { issues } = buildConfig([{ values, source: "test.yaml" }]);
  const listed = issues.map((issue) => /known keys: ([^)]*)\)/.exec(issue.message)?.[1]).find((list) => list !== undefined);
  assert.ok(listed !== undefined, `no "known keys" issue for ${JSON.stringify(values)}: ${JSON.stringify(issues)}`);
  return listed.split(", ").map((key) => key.split(".").at(-1)!);
}

const keysOf = (doc: ConfigKeyDoc | undefined) => Object.keys(doc?.keys ?? {});
const documented = (path: string): ConfigKeyDoc | undefined => {
  let doc: ConfigKeyDoc | undefined = { type: "mapping", text: "", keys: CONFIG_KEYS };
  for (const part of path === "" ? [] : path.split(".")) doc = doc?.keys?.[part];
  return doc;
};

const CLUSTER = { hosts: ["127.0.0.1:5432"] };
const ROUTES = [{ name: "all", cluster: "c", target: "any" }];
/** A config with an unknown key at each documented mapping, by the mapping's path in CONFIG_KEYS. */
const PROBES: Record<string, Record<string, unknown>> = {
  "": { bogus: 1 },
  admin: { admin: { bogus: 1 } },
  tls: { tls: { bogus: 1 } },
  upstream_tls: { upstream_tls: { bogus: 1 } },
  auth: { auth: { bogus: 1 } },
  policy: { policy: { bogus: 1 } },
  limits: { limits: { bogus: 1 } },
  "limits.connect_rate": { limits: { connect_rate: { per_source: 1, bogus: 1 } } },
  "limits.cancel_rate": { limits: { cancel_rate: { per_source: 1, bogus: 1 } } },
  "limits.startup": { limits: { startup: { bogus: 1 } } },
  audit: { audit: { path: "-", bogus: 1 } },
  "clusters.NAME": { clusters: { c: { ...CLUSTER, bogus: 1 } }, routes: ROUTES },
  "clusters.NAME.health": { clusters: { c: { ...CLUSTER, health: { user: "u", bogus: 1 } } }, routes: ROUTES },
  "clusters.NAME.tls": { clusters: { c: { ...CLUSTER, tls: { mode: "disable", bogus: 1 } } }, routes: ROUTES },
  routes: { clusters: { c: CLUSTER }, routes: [{ ...ROUTES[0], bogus: 1 }] },
  routing: { routing: { bogus: 1 } },
  pool: { auth: { mode: "scram", file: "/x" }, pool: { mode: "session", size: 1, bogus: 1 } },
  "routes.pool": { auth: { mode: "scram", file: "/x" }, clusters: { c: CLUSTER }, routes: [{ ...ROUTES[0], pool: { mode: "session", size: 1, bogus: 1 } }] },
};

/** Defaults the config leaves undefined and the code using it fills in: the value written is that one. */
const RESOLVED_LATER: Record<string, (config: Config) => void> = {
  "limits.cancel_rate": (config) => assert.deepEqual(config.limits.cancelRate, DEFAULT_CANCEL_RATE),
};

/** Keys that are valid only next to others: the default is compared with those others set alone. */
const SIBLINGS: Record<string, Record<string, unknown>> = {
  "limits.startup.ipv6_prefix": { max_connections: 5 },
  "audit.queries": { path: "-" },
  "audit.max_query_length": { path: "-" },
  "audit.redact_literals": { path: "-" },
};

describe("config_keys: the documented keys are the validated keys", () => {
  for (const [path, values] of Object.entries(PROBES)) {
    it(`${path || "top level"}: documented keys = the keys the validator knows`, () => {
      assert.deepEqual(keysOf(documented(path) ?? undefined).sort(), knownKeys(values).sort());
    });
  }

  it("every documented mapping with keys of its own is probed above (none left unchecked)", () => {
    const unprobed: string[] = [];
    const walk = (prefix: string, keys: Readonly<Record<string, ConfigKeyDoc>>) => {
      for (const [key, doc] of Object.entries(keys)) {
        const path = prefix === "" ? key : `${prefix}.${key}`;
        if (doc.keys && key !== "clusters") {
          if (!(path in PROBES)) unprobed.push(path);
          walk(path, doc.keys);
        } else if (doc.keys) walk(path, doc.keys);
      }
    };
    walk("", CONFIG_KEYS);
    assert.deepEqual(unprobed, []);
  });

  it("each documented default, written in a file, changes nothing", () => {
    const build = (path: string[], value: unknown) => {
      const values = path.reduceRight<unknown>((inner, name) => ({ [name]: inner }), value) as Record<string, unknown>;
      return buildConfig([{ values, source: "d.yaml" }]);
    };
    const walk = (path: string[], keys: Readonly<Record<string, ConfigKeyDoc>>) => {
      for (const [key, doc] of Object.entries(keys)) {
        // Per-cluster defaults: below; pool defaults: tests/pool/pool_schema.test.ts (a pool needs mode and size).
        if (key === "NAME" || path[0] === "clusters" || path[0] === "routes" || path[0] === "pool") continue;
        const name = [...path, key].join(".");
        if (doc.default !== undefined) {
          const written = (parseYaml(`v: ${doc.default}`).value as Record<string, unknown>)["v"];
          const siblings = SIBLINGS[name];
          const { config, issues } = siblings ? build(path, { ...siblings, [key]: written }) : build([...path, key], written);
          const without = siblings ? build(path, siblings).config : buildConfig([]).config;
          assert.deepEqual(issues, [], `${name}: ${doc.default}`);
          const same = RESOLVED_LATER[name];
          if (same) same(config);
          else assert.deepEqual(config, without, `${name}: ${doc.default} is not the default`);
        }
        if (doc.keys) walk([...path, key], doc.keys);
      }
    };
    walk([], CONFIG_KEYS);
  });

  it("a cluster's documented defaults (health interval, timeout, database; balance; tls.mode) are its defaults", () => {
    const cluster = (extra: Record<string, unknown>) =>
      buildConfig([{ values: { clusters: { c: { ...CLUSTER, ...extra } }, routes: ROUTES, auth: { file: "/x" } }, source: "d.yaml" }]);
    const health = CONFIG_KEYS.clusters.keys.NAME.keys.health.keys;
    const plain = cluster({ health: { user: "u" } });
    assert.deepEqual(plain.issues, []);
    const explicit = cluster({
      health: { user: "u", interval: health.interval.default, timeout: health.timeout.default, database: health.database.default },
      balance: CONFIG_KEYS.clusters.keys.NAME.keys.balance.default,
    });
    assert.deepEqual(explicit.issues, []);
    assert.deepEqual(explicit.config.clusters, plain.config.clusters);
  });

  it("every flag that sets a config key names a documented key, and the parser takes every documented flag", () => {
    for (const option of CLI_OPTIONS) {
      if ("key" in option) assert.ok(documented(option.key) !== undefined, `--${option.flag} sets ${option.key}, which config_keys.ts does not document`);
      const argv = "arg" in option && option.flag !== "explain" ? [`--${option.flag}`, "x"] : [`--${option.flag}`];
      assert.doesNotThrow(() => parseCliArgs(argv), `--${option.flag}`);
      if ("short" in option) assert.doesNotThrow(() => parseCliArgs([`-${option.short}`, ...argv.slice(1)]), `-${option.short}`);
    }
  });
});
