import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type PoolKey, type PoolMetricsSink, PoolRegistry } from "../../src/pool/pool_registry.ts";
import { PoolError } from "../../src/pool/pool_error.ts";
import { FakeFactory, type FakeServer, ManualTimers, settingsOf, settle } from "./fakes.ts";

const key = (user: string, host = "db1:5432", route = "app"): PoolKey => ({
  route,
  cluster: "main",
  host,
  database: "appdb",
  user,
});

function makeRegistry(maxServerConnections?: number, metrics?: PoolMetricsSink) {
  const timers = new ManualTimers();
  const factories = new Map<string, FakeFactory>();
  const registry = new PoolRegistry<FakeServer>({
    factory: (k) => {
      const factory = new FakeFactory();
      factories.set(`${k.user}@${k.host}`, factory);
      return factory;
    },
    maxServerConnections,
    timers,
    ...(metrics ? { metrics } : {}),
  });
  return { registry, factories, timers };
}

describe("PoolRegistry", () => {
  it("shares a pool per key and settings, and a different pool for other settings or users", () => {
    const { registry } = makeRegistry();
    const settings = settingsOf({ size: 3 });
    const a = registry.pool(key("alice"), settings);
    assert.equal(
      registry.pool(key("alice", "db1:5432", "other-route"), settingsOf({ size: 3 })),
      a,
      "equal settings share",
    );
    assert.notEqual(registry.pool(key("alice"), settingsOf({ size: 4 })), a);
    assert.notEqual(registry.pool(key("bob"), settings), a);
    assert.equal(registry.size, 3);
  });

  it("snapshot() lists every pool with its key, mode and counts", async () => {
    const { registry } = makeRegistry();
    const pool = registry.pool(key("alice"), settingsOf({ size: 3 }));
    const server = await pool.lease();
    pool.pin(server, "advisory_lock");
    assert.deepEqual(registry.snapshot(), [{
      route: "app",
      cluster: "main",
      host: "db1:5432",
      database: "appdb",
      user: "alice",
      mode: "transaction",
      size: 3,
      pool: "app:alice@db1:5432/appdb",
      clients_active: 1,
      clients_waiting: 0,
      servers_active: 1,
      servers_idle: 0,
      servers_used: 0,
      servers_login: 0,
      pinned: 1,
      logins_ok: 1,
      logins_failed: 0,
      wait_timeouts: 0,
      refused: 0,
      wait_seconds_p99: 0,
    }]);
    assert.equal(JSON.parse(JSON.stringify({ pools: registry.snapshot() })).pools[0].user, "alice");
  });

  it("max_server_connections caps one host over all its pools", async () => {
    const { registry, factories } = makeRegistry(3);
    const alice = registry.pool(key("alice"), settingsOf({ size: 3 }));
    const bob = registry.pool(key("bob"), settingsOf({ size: 3 }));
    const other = registry.pool(key("carol", "db2:5432"), settingsOf({ size: 3 }));
    await Promise.all([alice.lease(), alice.lease(), bob.lease()]);
    const waiting = bob.lease();
    await settle();
    assert.equal(bob.stats().clients_waiting, 1, "the host is full");
    assert.equal(factories.get("bob@db1:5432")!.opened.length, 1);
    await Promise.all([other.lease(), other.lease(), other.lease()]);
    assert.equal(registry.hostSlots("db1:5432")!.used, 3);
    assert.equal(registry.hostSlots("db2:5432")!.used, 3, "each host has its own cap");
    void waiting;
  });

  it("gives freed slots round robin to pools with waiters, not back to the busiest pool", async () => {
    const { registry } = makeRegistry(1);
    const settings = settingsOf({ size: 5 });
    const [a, b, c] = ["a", "b", "c"].map((user) => registry.pool(key(user), settings));
    const held = await a!.lease();
    const served: string[] = [];
    const lease = (name: string, pool: typeof a) =>
      pool!.lease().then((server) => (served.push(name), server));
    const bWait = lease("b", b);
    const cWait = lease("c", c);
    const aWait = lease("a", a); // the busy pool wants more too
    await settle();
    a!.release(held, { reusable: true }); // another pool waits: the server closes, its slot moves on
    await settle();
    assert.ok(held.closed);
    assert.deepEqual(served, ["b"]);
    b!.release(await bWait, { reusable: true });
    await settle();
    assert.deepEqual(served, ["b", "c"]);
    c!.release(await cWait, { reusable: true });
    await settle();
    assert.deepEqual(served, ["b", "c", "a"]);
    a!.release(await aWait, { reusable: true });
    assert.equal(a!.stats().servers_idle, 1, "nobody else waits: kept idle");
    assert.equal(registry.hostSlots("db1:5432")!.used, 1);
  });

  it("keeps released servers when the pools queued for a slot no longer wait, or only the pool itself waits", async () => {
    const { registry, timers } = makeRegistry(1);
    const a = registry.pool(key("a"), settingsOf({ size: 2 }));
    const b = registry.pool(key("b"), settingsOf({ size: 2, wait_timeout: "1s" }));
    const held = await a.lease();
    await assert.rejects(
      Promise.all([b.lease(), timers.advance(1000)]),
      (error: PoolError) => error.code === "53300",
    );
    const again = a.lease(); // a's own waiter, at the cap
    await settle();
    a.release(held, { reusable: true });
    assert.equal(await again, held, "handed straight to a's waiter: b gave up, so no slot moves");
    assert.ok(!held.closed);
  });

  it("closes another pool's idle server when a pool needs a slot of a full host", async () => {
    const { registry } = makeRegistry(1);
    const a = registry.pool(key("a"), settingsOf({ size: 2 }));
    const b = registry.pool(key("b"), settingsOf({ size: 2 }));
    const idle = await a.lease();
    a.release(idle, { reusable: true });
    const server = await b.lease();
    assert.ok(idle.closed);
    assert.equal(a.stats().servers_idle, 0);
    assert.ok(!server.closed);
  });

  it("min is filled only from free slots: it never takes a slot a waiter needs", async () => {
    const { registry, timers } = makeRegistry(2);
    const a = registry.pool(key("a"), settingsOf({ size: 2 }));
    await Promise.all([a.lease(), a.lease()]);
    const b = registry.pool(key("b"), settingsOf({ size: 2, min: 2 }));
    await timers.advance(10);
    assert.equal(b.open + b.stats().servers_login, 0);
    assert.equal(registry.hostSlots("db1:5432")!.used, 2);
  });

  it("drainHost() closes and forgets the pools of that host; their waiters get 57P03", async () => {
    const { registry } = makeRegistry();
    const down = registry.pool(key("a"), settingsOf({ size: 1 }));
    const up = registry.pool(key("a", "db2:5432"), settingsOf({ size: 1 }));
    const held = await down.lease();
    const waiting = down.lease();
    const kept = await up.lease();
    assert.equal(registry.drainHost("db1:5432"), 1);
    await assert.rejects(waiting, (error: PoolError) => error.code === "57P03");
    down.release(held, { reusable: true });
    assert.ok(held.closed);
    assert.deepEqual(registry.snapshot().map((pool) => pool.host), ["db2:5432"]);
    assert.notEqual(
      registry.pool(key("a"), settingsOf({ size: 1 })),
      down,
      "a fresh pool when the host is back",
    );
    assert.ok(!kept.closed);
  });

  it("closeWhere() closes pools a reload dropped; closeAll() the rest", async () => {
    const { registry, factories } = makeRegistry(2);
    const old = registry.pool(key("a", "db1:5432", "old"), settingsOf({ size: 1 }));
    registry.pool(key("b"), settingsOf({ size: 1 }));
    const server = await old.lease();
    old.release(server, { reusable: true });
    assert.equal(registry.closeWhere((k) => k.route === "old"), 1);
    assert.ok(server.closed);
    assert.equal(registry.hostSlots("db1:5432")!.used, 0, "its slot is free again");
    registry.closeAll();
    assert.equal(registry.size, 0);
    assert.ok([...factories.values()].every((factory) => factory.live === 0));
  });

  it("reports waits, logins and pins to the metrics sink with the pool's label", async () => {
    const events: string[] = [];
    const { registry, factories } = makeRegistry(undefined, {
      waited: (pool, seconds) => events.push(`waited ${pool} ${seconds}`),
      login: (pool, result) => events.push(`login ${pool} ${result}`),
      pinned: (reason) => events.push(`pinned ${reason}`),
    });
    const pool = registry.pool(key("alice"), settingsOf({ size: 1 }));
    const server = await pool.lease();
    pool.pin(server, "set_role");
    factories.get("alice@db1:5432")!.failWith = new Error("no");
    pool.release(server, { reusable: false });
    await assert.rejects(pool.lease(), /no/);
    assert.deepEqual(events, [
      "login app:alice@db1:5432/appdb ok",
      "waited app:alice@db1:5432/appdb 0",
      "pinned set_role",
      "login app:alice@db1:5432/appdb failed",
    ]);
  });
});
