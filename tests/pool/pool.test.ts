import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Pool, type PoolEvents } from "../../src/pool/pool.ts";
import { PoolError } from "../../src/pool/pool_error.ts";
import { FakeFactory, type FakeServer, ManualTimers, settingsOf, settle } from "./fakes.ts";

function makePool(raw: Record<string, unknown>, events: PoolEvents = {}) {
  const timers = new ManualTimers();
  const factory = new FakeFactory();
  const pool = new Pool<FakeServer>({
    settings: settingsOf(raw),
    factory,
    timers,
    events,
    refillRetryMs: 500,
  });
  return { pool, factory, timers };
}

/** A lease whose outcome the test can inspect later. */
function track(promise: Promise<FakeServer>) {
  const state: { server?: FakeServer; error?: Error } = {};
  promise.then((server) => state.server = server, (error: Error) => state.error = error);
  return state;
}

describe("Pool", () => {
  it("lease() opens a server, release() makes it idle, and the next lease reuses it", async () => {
    const { pool, factory } = makePool({ size: 2 });
    const a = await pool.lease();
    assert.equal(factory.opened.length, 1);
    assert.deepEqual({ ...pool.stats(), wait_seconds_p99: 0 }, {
      ...pool.stats(),
      clients_active: 1,
      servers_active: 1,
      servers_idle: 0,
      servers_login: 0,
      logins_ok: 1,
    });
    pool.release(a, { reusable: true });
    assert.equal(pool.stats().servers_idle, 1);
    assert.equal(await pool.lease(), a);
    assert.equal(factory.opened.length, 1, "no second login");
  });

  it("tryLease() lends an idle server synchronously, and undefined when none is idle", async () => {
    const { pool, factory } = makePool({ size: 1 });
    assert.equal(pool.tryLease(), undefined, "nothing idle yet: it does not open one");
    assert.equal(factory.attempts, 0);
    const a = await pool.lease();
    assert.equal(pool.tryLease(), undefined);
    pool.release(a, { reusable: true });
    assert.equal(pool.tryLease(), a);
    assert.equal(pool.stats().servers_active, 1);
  });

  it("lends idle servers LIFO: the most recently released goes out first", async () => {
    const { pool } = makePool({ size: 3 });
    const [a, b, c] = await Promise.all([pool.lease(), pool.lease(), pool.lease()]);
    pool.release(a!, { reusable: true });
    pool.release(c!, { reusable: true });
    pool.release(b!, { reusable: true });
    assert.equal(await pool.lease(), b);
    assert.equal(await pool.lease(), c);
    assert.equal(await pool.lease(), a);
  });

  it("never opens more than size, and serves waiters FIFO as servers come back", async () => {
    const { pool, factory } = makePool({ size: 2 });
    const held = await Promise.all([pool.lease(), pool.lease()]);
    const order: string[] = [];
    const waiters = ["b", "c", "d"].map((name) => pool.lease().then((server) => (order.push(name), server)));
    await settle();
    assert.equal(factory.opened.length, 2);
    assert.equal(pool.stats().clients_waiting, 3);
    pool.release(held[0]!, { reusable: true });
    pool.release(held[1]!, { reusable: true });
    await settle();
    assert.deepEqual(order, ["b", "c"]);
    pool.release(await waiters[0]!, { reusable: true });
    await settle();
    assert.deepEqual(order, ["b", "c", "d"]);
    assert.equal(factory.opened.length, 2);
  });

  it("opens reserve connections only once a client has waited reserve_timeout, and closes them when nobody waits", async () => {
    const { pool, factory, timers } = makePool({ size: 1, reserve: 1, reserve_timeout: "100ms" });
    const first = await pool.lease();
    const waiting = track(pool.lease());
    await timers.advance(99);
    assert.equal(factory.opened.length, 1, "not before reserve_timeout");
    assert.equal(waiting.server, undefined);
    await timers.advance(1);
    assert.equal(factory.opened.length, 2, "a reserve connection");
    assert.ok(waiting.server);
    const third = track(pool.lease()); // size + reserve reached: waits
    await timers.advance(200);
    assert.equal(factory.opened.length, 2, "never more than size + reserve");
    pool.release(waiting.server!, { reusable: true });
    await settle();
    assert.equal(third.server, waiting.server, "a waiter takes it");
    pool.release(third.server!, { reusable: true });
    assert.equal(factory.closed.length, 1, "the connection beyond size closes when nobody waits");
    assert.equal(pool.open, 1);
    pool.release(first, { reusable: true });
    assert.equal(pool.stats().servers_idle, 1);
  });

  it("rejects a waiter at wait_timeout with 53300, severity ERROR, and forgets it", async () => {
    const seen: number[] = [];
    const { pool, timers } = makePool({ size: 1, wait_timeout: "2s" }, { waited: (s) => seen.push(s) });
    const held = await pool.lease();
    const waiting = track(pool.lease());
    await timers.advance(1999);
    assert.equal(waiting.error, undefined);
    await timers.advance(1);
    const error: unknown = waiting.error;
    assert.ok(error instanceof PoolError);
    assert.equal(error.code, "53300");
    assert.equal(error.severity, "ERROR");
    assert.match(error.message, /wait_timeout \(2s\)/);
    assert.equal(pool.stats().clients_waiting, 0);
    assert.equal(pool.stats().wait_timeouts, 1);
    pool.release(held, { reusable: true });
    assert.equal(pool.stats().servers_idle, 1, "nobody is served after timing out");
    assert.deepEqual(seen, [0, 2]);
  });

  it("refuses a client at once with 53300 when max_waiting clients already wait", async () => {
    const { pool } = makePool({ size: 1, max_waiting: 1 });
    await pool.lease();
    const waiting = track(pool.lease());
    await assert.rejects(
      pool.lease(),
      (error: PoolError) => error.code === "53300" && /max_waiting 1/.test(error.message),
    );
    assert.equal(pool.stats().refused, 1);
    assert.equal(waiting.error, undefined, "the first waiter keeps waiting");
  });

  it("max_waiting 0 still lets size clients in while their servers log in", async () => {
    const { pool, factory } = makePool({ size: 2, max_waiting: 0 });
    factory.manual = true;
    const a = track(pool.lease());
    const b = track(pool.lease());
    await assert.rejects(pool.lease(), /max_waiting 0/);
    assert.equal(pool.stats().servers_login, 2);
    factory.logins.forEach((login) => login.resolve());
    await settle();
    assert.ok(a.server && b.server && a.server !== b.server);
  });

  it("release(reusable: false) closes the server and opens a replacement for a waiter", async () => {
    const { pool, factory } = makePool({ size: 1 });
    const held = await pool.lease();
    const waiting = track(pool.lease());
    pool.release(held, { reusable: false });
    await settle();
    assert.ok(held.closed);
    assert.ok(waiting.server);
    assert.notEqual(waiting.server, held);
    assert.equal(factory.opened.length, 2);
    pool.release(waiting.server, { reusable: false });
    assert.equal(pool.open, 0, "no replacement without a waiter (min 0)");
  });

  it("closes servers idle for idle_timeout, down to min", async () => {
    const { pool, factory, timers } = makePool({ size: 3, min: 1, idle_timeout: "10s" });
    await settle();
    const servers = await Promise.all([pool.lease(), pool.lease(), pool.lease()]);
    pool.release(servers[0]!, { reusable: true });
    await timers.advance(5000);
    pool.release(servers[1]!, { reusable: true });
    pool.release(servers[2]!, { reusable: true });
    await timers.advance(5000);
    assert.deepEqual(factory.closed.map((s) => s.id), [servers[0]!.id], "only the one idle for 10 s");
    await timers.advance(5000);
    assert.equal(pool.open, 1, "min stays open");
    assert.equal(pool.stats().servers_idle, 1);
    await timers.advance(60_000);
    assert.equal(pool.open, 1);
  });

  it("keeps min servers open from the start and refills after a close", async () => {
    const { pool, factory } = makePool({ size: 3, min: 2 });
    await settle();
    assert.equal(factory.opened.length, 2);
    assert.equal(pool.stats().servers_idle, 2);
    const a = await pool.lease();
    pool.release(a, { reusable: false });
    await settle();
    assert.equal(factory.opened.length, 3);
    assert.equal(pool.stats().servers_idle, 2);
  });

  it("replaces a server older than lifetime when it is released, and skips one found idle", async () => {
    const { pool, factory, timers } = makePool({ size: 2, lifetime: "60s", idle_timeout: 0 });
    const a = await pool.lease();
    await timers.advance(60_000);
    pool.release(a, { reusable: true });
    assert.ok(a.closed, "closed at release");
    const b = await pool.lease();
    pool.release(b, { reusable: true });
    await timers.advance(59_999);
    assert.equal(b.closed, false);
    await timers.advance(1);
    assert.ok(b.closed, "an idle server past its lifetime is closed by the sweep");
    const c = await pool.lease();
    assert.notEqual(c, b);
    assert.equal(factory.opened.length, 3);
  });

  it("drain() closes idle servers, rejects waiters, closes lent ones at release, and stays usable", async () => {
    const { pool, factory } = makePool({ size: 2 });
    const [a, b] = await Promise.all([pool.lease(), pool.lease()]);
    pool.release(b!, { reusable: true });
    const c = await pool.lease(); // b again
    const waiting = track(pool.lease());
    factory.manual = true;
    pool.drain();
    await settle();
    assert.ok(waiting.error instanceof PoolError);
    assert.equal(waiting.error.code, "57P03");
    pool.release(a!, { reusable: true });
    assert.ok(a!.closed, "a server lent before the drain is never lent again");
    const next = track(pool.lease());
    factory.logins.shift()!.resolve();
    await settle();
    assert.ok(next.server && next.server !== a && next.server !== c);
    pool.release(c, { reusable: true });
    assert.ok(c.closed);
  });

  it("a login in flight during drain() is closed when it lands", async () => {
    const { pool, factory } = makePool({ size: 1 });
    factory.manual = true;
    const waiting = track(pool.lease());
    pool.drain(new Error("host down"));
    factory.logins.shift()!.resolve();
    await settle();
    assert.equal(waiting.error?.message, "host down");
    assert.equal(factory.opened.length, 1);
    assert.ok(factory.opened[0]!.closed);
    assert.equal(pool.open, 0);
  });

  it("close() refuses further leases with 57P03 and closes what is open", async () => {
    const { pool, factory, timers } = makePool({ size: 2, min: 1 });
    const a = await pool.lease();
    pool.close();
    await assert.rejects(pool.lease(), (error: PoolError) => error.code === "57P03");
    pool.release(a, { reusable: true });
    assert.ok(a.closed);
    assert.equal(factory.live, 0);
    assert.equal(timers.pending, 0, "no timer left behind");
  });

  it("a failed login rejects every waiter when nothing else could serve them, and is counted", async () => {
    const logins: string[] = [];
    const { pool, factory } = makePool({ size: 2 }, { login: (result) => logins.push(result) });
    factory.manual = true;
    const waiters = [track(pool.lease()), track(pool.lease()), track(pool.lease())];
    assert.equal(factory.logins.length, 2);
    factory.logins.shift()!.fail(new Error('password authentication failed for user "app"'));
    await settle();
    assert.match(
      String(waiters[0]!.error),
      /password authentication failed/,
      "the oldest waiter gets the error",
    );
    assert.equal(waiters[1]!.error, undefined);
    assert.equal(pool.stats().servers_login, 2, "one login still in flight, one retried for the others");
    factory.logins.shift()!.fail(new Error("still wrong"));
    await settle();
    assert.match(String(waiters[1]!.error), /still wrong/);
    assert.equal(waiters[2]!.error, undefined, "a login is still in flight for it");
    factory.logins.shift()!.fail(new Error("wrong again"));
    await settle();
    assert.match(String(waiters[2]!.error), /wrong again/, "nobody is left hanging");
    assert.equal(pool.stats().clients_waiting, 0);
    assert.equal(pool.stats().servers_login, 0);
    assert.equal(pool.stats().logins_failed, 3);
    assert.ok(logins.every((result) => result === "failed"));
  });

  it("a failed login hands its error to all waiters at once when no other login is in flight", async () => {
    const { pool, factory } = makePool({ size: 1 });
    factory.manual = true;
    const waiters = [track(pool.lease()), track(pool.lease()), track(pool.lease())];
    assert.equal(factory.logins.length, 1);
    factory.logins.shift()!.fail(new Error('database "nope" does not exist'));
    await settle();
    assert.ok(waiters.every((waiter) => /does not exist/.test(String(waiter.error))));
    assert.equal(factory.attempts, 1, "one login attempt, not one per waiter");
  });

  it("a failed login with servers lent rejects one waiter; the others get released servers", async () => {
    const { pool, factory } = makePool({ size: 2 });
    const held = await pool.lease();
    factory.failWith = new Error("too many connections for role");
    const first = track(pool.lease());
    const second = track(pool.lease());
    await settle();
    assert.match(String(first.error), /too many connections/);
    assert.match(String(second.error), /too many connections/, "each open tried for it failed");
    factory.failWith = undefined;
    const third = track(pool.lease());
    await settle();
    assert.ok(third.server, "logins work again");
    pool.release(held, { reusable: true });
    assert.equal(pool.stats().servers_idle, 1);
  });

  it("retries filling min after refillRetryMs when a background login fails", async () => {
    const { pool, factory, timers } = makePool({ size: 2, min: 1 });
    factory.failWith = new Error("down");
    const fresh = new Pool<FakeServer>({ settings: pool.settings, factory, timers, refillRetryMs: 500 });
    await settle();
    const attempts = factory.attempts;
    await timers.advance(499);
    assert.equal(factory.attempts, attempts);
    factory.failWith = undefined;
    await timers.advance(1);
    assert.equal(fresh.stats().servers_idle, 1);
  });

  it("counts servers being reset as used, and pinned servers until unpin or release", async () => {
    const pins: string[] = [];
    const { pool } = makePool({ size: 2 }, { pinned: (reason) => pins.push(reason) });
    const [a, b] = await Promise.all([pool.lease(), pool.lease()]);
    pool.pin(a!, "listen");
    pool.pin(b!, "temp_table");
    assert.equal(pool.stats().pinned, 2);
    pool.unpin(a!);
    assert.equal(pool.stats().pinned, 1);
    pool.resetting(b!);
    assert.deepEqual(
      [pool.stats().servers_used, pool.stats().servers_active, pool.stats().pinned],
      [1, 1, 0],
    );
    pool.release(b!, { reusable: true });
    assert.deepEqual([pool.stats().servers_used, pool.stats().servers_idle], [0, 1]);
    assert.deepEqual(pins, ["listen", "temp_table"]);
  });

  it("reports the 99th percentile of recent waits", async () => {
    const { pool, timers } = makePool({ size: 1 });
    assert.equal(pool.stats().wait_seconds_p99, undefined);
    let held = await pool.lease();
    for (let i = 0; i < 3; i++) {
      const next = pool.lease();
      await timers.advance(1000 * (i + 1));
      pool.release(held, { reusable: true });
      held = await next;
    }
    assert.equal(pool.stats().wait_seconds_p99, 3);
  });

  it("runs on the system clock by default (wait_timeout fires, close() leaves no timer running)", async () => {
    const factory = new FakeFactory();
    const pool = new Pool<FakeServer>({
      settings: settingsOf({ size: 1, wait_timeout: "50ms", min: 1 }),
      factory,
    });
    const held = await pool.lease();
    const started = performance.now();
    await assert.rejects(pool.lease(), (error: PoolError) => error.code === "53300");
    assert.ok(performance.now() - started >= 40, "not before wait_timeout");
    pool.release(held, { reusable: true });
    pool.close();
    assert.equal(factory.live, 0);
  });
});
