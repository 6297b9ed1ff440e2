import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SettingError, SettingErrors } from "../../src/config/config_error.ts";
import { parseMaxServerConnections, parsePool, POOL_DEFAULTS } from "../../src/pool/pool_schema.ts";
import { parseRoutes } from "../../src/routing/route_schema.ts";
import {
  checkRoutesAgainstClusters,
  parseClusters,
  singleUpstream,
} from "../../src/routing/cluster_schema.ts";

const errorsOf = (parse: () => unknown): string[] => {
  try {
    parse();
  } catch (error) {
    const list = error instanceof SettingErrors ? error.errors : error instanceof SettingError ? [error] : [];
    if (list.length === 0) throw error;
    return list.map((e) => `${e.path.map(String).join(".")}: ${e.message}`);
  }
  assert.fail("expected an error");
};

describe("pool: schema", () => {
  it("parses the issue's example", () => {
    assert.deepEqual(
      parsePool({
        mode: "transaction",
        size: 20,
        min: 2,
        reserve: 5,
        reserve_timeout: "3s",
        wait_timeout: "30s",
        max_waiting: 1000,
        idle_timeout: "10m",
        lifetime: "1h",
        on_pin: "error",
      }),
      {
        mode: "transaction",
        size: 20,
        min: 2,
        reserve: 5,
        reserveTimeoutMs: 3000,
        waitTimeoutMs: 30_000,
        maxWaiting: 1000,
        idleTimeoutMs: 600_000,
        lifetimeMs: 3_600_000,
        resetQuery: undefined,
        onPin: "error",
      },
    );
  });

  it("fills the issue's defaults where the block is silent; session mode resets with DISCARD ALL", () => {
    assert.deepEqual(parsePool({ mode: "session", size: 20 }), {
      mode: "session",
      size: 20,
      min: 0,
      reserve: 0,
      reserveTimeoutMs: 5000,
      waitTimeoutMs: 30_000,
      maxWaiting: 1000,
      idleTimeoutMs: 600_000,
      lifetimeMs: 3_600_000,
      resetQuery: "DISCARD ALL",
      onPin: "pin",
    });
    assert.equal(
      parsePool({ mode: "session", size: 1, reset_query: "" }).resetQuery,
      undefined,
      '"" runs nothing',
    );
    assert.equal(parsePool({ mode: "transaction", size: 1 }).onPin, POOL_DEFAULTS.onPin);
    assert.equal(
      parsePool({ mode: "transaction", size: 1, idle_timeout: 0, lifetime: 0 }).lifetimeMs,
      0,
      "0: never",
    );
  });

  it("names every bad key with its path, and the keys that belong to the other mode", () => {
    assert.deepEqual(
      errorsOf(() =>
        parsePool({
          mode: "statement",
          size: 0,
          min: -1,
          wait_timeout: 0,
          idle_timeout: "soon",
          on_pin: "ignore",
          colour: "red",
        }, [3, "pool"])
      ),
      [
        '3.pool.mode: expected one of session, transaction, got "statement"',
        "3.pool.size: expected a whole number from 1 to 10000, got 0",
        "3.pool.min: expected a whole number from 0 to 10000, got -1",
        "3.pool.wait_timeout: must be more than 0 (clients must not wait forever)",
        '3.pool.idle_timeout: expected a duration such as "500ms", "60s" or "2m", got "soon"',
        '3.pool.on_pin: expected one of pin, error, got "ignore"',
        "3.pool.colour: unknown key (known keys: mode, size, min, reserve, reserve_timeout, wait_timeout, max_waiting, idle_timeout, lifetime, reset_query, on_pin)",
      ],
    );
    assert.deepEqual(errorsOf(() => parsePool({})), [
      ": a pool needs mode: (session or transaction)",
      ": a pool needs size: (server connections per host, database and user), such as size: 20",
    ]);
    assert.deepEqual(
      errorsOf(() => parsePool({ mode: "transaction", size: 2, min: 3, reset_query: "DISCARD ALL" })),
      [
        "min: must be at most size (2), got 3",
        "reset_query: runs only in mode session (in mode transaction a server is released clean at each transaction's end)",
      ],
    );
    assert.deepEqual(errorsOf(() => parsePool({ mode: "session", size: 2, on_pin: "pin" })), [
      "on_pin: applies only to mode transaction (in mode session a client keeps its server for the whole session)",
    ]);
    assert.deepEqual(errorsOf(() => parsePool("transaction")), [
      ": expected a mapping such as { mode: transaction, size: 20 }",
    ]);
  });

  it("max_server_connections is a whole number of 1 or more", () => {
    assert.equal(parseMaxServerConnections(100), 100);
    assert.equal(parseMaxServerConnections("100"), 100);
    assert.throws(() => parseMaxServerConnections(0), /from 1 to/);
    assert.throws(() => parseMaxServerConnections("lots"), /whole number/);
  });

  it("routes carry their pool:, and a bad pool names the route's path", () => {
    const [pooled, plain] = parseRoutes([
      {
        name: "app",
        match: { user: "app" },
        cluster: "main",
        target: "primary",
        pool: { mode: "transaction", size: 20 },
      },
      { name: "rest", cluster: "main" },
    ]);
    assert.equal(pooled!.pool?.size, 20);
    assert.equal(plain!.pool, undefined);
    assert.ok(!("pool" in plain!), "no pool key at all on an unpooled route");
    assert.deepEqual(errorsOf(() => parseRoutes([{ cluster: "main", pool: { mode: "transaction" } }])), [
      "0.pool: a pool needs size: (server connections per host, database and user), such as size: 20",
    ]);
  });

  it("the upstream: form takes the top-level pool on its one route", () => {
    const pool = parsePool({ mode: "session", size: 5 });
    assert.equal(singleUpstream("db:5432", pool).routes[0]!.pool, pool);
    assert.ok(!("pool" in singleUpstream("db:5432").routes[0]!));
  });

  it("a one-host cluster without health is valid for target any (and only for any)", () => {
    const clusters = parseClusters({ solo: { hosts: ["db:5432"] } });
    const ok = parseRoutes([{
      name: "app",
      cluster: "solo",
      target: "any",
      pool: { mode: "transaction", size: 5 },
    }]);
    assert.deepEqual(checkRoutesAgainstClusters(ok, clusters), []);
    const bad = parseRoutes([{ name: "app", cluster: "solo", target: "primary" }]);
    assert.match(checkRoutesAgainstClusters(bad, clusters)[0]!.message, /needs health checks/);
  });
});
