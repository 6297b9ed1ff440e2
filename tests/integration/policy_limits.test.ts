/** Connection policy and limits with real PostgreSQL, psql and npm pg, through an in-process pgrelay. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { Proxy } from "../../src/core/proxy.ts";
import { parseLimits } from "../../src/limits/limits_schema.ts";
import { parsePolicy } from "../../src/policy/policy_schema.ts";
import { DAY_NAMES } from "../../src/policy/time_window.ts";
import { runPsql } from "../support/clients.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { sleep } from "../support/wait.ts";


type Login = { user: string; password: string; database?: string; application_name?: string };
type Outcome = { ok: true; client: pg.Client } | { ok: false; code: string; message: string };

describe("policy and limits with real clients", () => {
  let cluster: PostgresCluster;
  const proxies: Proxy[] = [];
  const clients: pg.Client[] = [];

  const start = async (options: Parameters<typeof startTestProxy>[1], listen?: string) => {
    const proxy = await startTestProxy(
      cluster,
      listen ? { ...options, listen: { hostname: listen, port: 0 } } : options,
    );
    proxies.push(proxy);
    return proxy;
  };
  /** Connects with npm pg and runs `select 1`; keeps the client open (closed in after()). */
  const connect = async (proxy: Proxy, login: Login): Promise<Outcome> => {
    const client = new pg.Client({
      host: proxy.address.hostname,
      port: proxy.address.port,
      database: "postgres",
      ...login,
    });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("select 1");
      clients.push(client);
      return { ok: true, client };
    } catch (error) {
      await client.end().catch(() => {});
      const e = error as Error & { code?: string };
      return { ok: false, code: e.code ?? "", message: e.message };
    }
  };
  const superuser = async (sql: string) => {
    const client = new pg.Client({
      host: cluster.host,
      port: cluster.port,
      database: "postgres",
      ...cluster.users.superuser,
    });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  };
  const connectionsLogged = () =>
    (cluster.logTail(1_000_000).match(/connection received: host=/g) ?? []).length;

  before(async () => {
    cluster = await startPostgres();
    await superuser("alter system set log_connections = on");
    await superuser("select pg_reload_conf()");
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.end().catch(() => {})));
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await cluster?.stop();
  });

  it("each match field allows and denies as configured", async () => {
    const today = DAY_NAMES[new Date().getUTCDay()]!;
    const otherDay = DAY_NAMES[(new Date().getUTCDay() + 3) % 7]!;
    const scram: Login = { ...cluster.users.scram };
    const md5: Login = { ...cluster.users.md5 };
    const cases: Array<[string, unknown, Login, boolean]> = [
      ["user glob", [{ name: "r", deny: { user: "scram_*" } }], scram, false],
      ["user glob, other user", [{ name: "r", deny: { user: "scram_*" } }], md5, true],
      ["database glob", [{ name: "r", deny: { database: "ap?" } }], { ...scram, database: "app" }, false],
      ["database glob, other database", [{ name: "r", deny: { database: "ap?" } }], {
        ...scram,
        database: "postgres",
      }, true],
      ["application_name", [{ name: "r", deny: { application_name: ["batch-*", "cron"] } }], {
        ...scram,
        application_name: "batch-7",
      }, false],
      ["application_name, other", [{ name: "r", deny: { application_name: ["batch-*", "cron"] } }], {
        ...scram,
        application_name: "web",
      }, true],
      ["source in block", [{ name: "r", deny: { source: "127.0.0.0/8" } }], scram, false],
      ["source outside block", [{ name: "r", deny: { source: ["10.0.0.0/8", "::1"] } }], scram, true],
      ["tls: false matches a plaintext session", [{ name: "r", deny: { tls: false } }], scram, false],
      ["tls: true does not match a plaintext session", [{ name: "r", deny: { tls: true } }], scram, true],
      ["time window now", [{ name: "r", deny: { time: { days: [today], tz: "UTC" } } }], scram, false],
      [
        "time window another day",
        [{ name: "r", deny: { time: { days: [otherDay], tz: "UTC" } } }],
        scram,
        true,
      ],
      ["all fields must match", [{ name: "r", deny: { user: "scram_user", database: "nope" } }], scram, true],
      [
        "default deny, allow rule",
        [{ name: "r", allow: { user: "scram_user", source: "127.0.0.1" } }],
        scram,
        true,
      ],
    ];
    for (const [what, rules, login, allowed] of cases) {
      const proxy = await start({
        policy: parsePolicy({ default: what.startsWith("default deny") ? "deny" : "allow", rules }),
      });
      const outcome = await connect(proxy, login);
      assert.equal(outcome.ok, allowed, `${what}: ${outcome.ok ? "allowed" : outcome.message}`);
      if (!outcome.ok) {
        assert.equal(outcome.code, "28000", what);
        assert.match(outcome.message, /^connection denied by pgrelay policy rule "r"$/, what);
      }
    }
  });

  it("source matches IPv6 clients", async () => {
    let proxy: Proxy;
    try {
      proxy = await start({
        policy: parsePolicy({ rules: [{ name: "v6-loopback", deny: { source: "::1/128" } }] }),
      }, "::1");
    } catch (error) {
      assert.fail(`cannot listen on ::1 (${(error as Error).message})`);
    }
    const denied = await connect(proxy, cluster.users.scram);
    assert.equal(denied.ok ? "allowed" : denied.code, "28000");
    const v4 = await start({
      policy: parsePolicy({ rules: [{ name: "v6-loopback", deny: { source: "::1/128" } }] }),
    });
    assert.equal((await connect(v4, cluster.users.scram)).ok, true);
  });

  it("psql shows the FATAL and the rule; the server never sees a denied client", async () => {
    const proxy = await start({
      policy: parsePolicy({
        rules: [{ name: "no-scram", deny: { user: "scram_user" } }, { deny: { user: "md5_user" } }],
      }),
    });
    const before = connectionsLogged();
    const login = {
      host: "127.0.0.1",
      port: proxy.address.port,
      ...cluster.users.scram,
      database: "postgres",
      env: { PGAPPNAME: "probe" },
    };
    const result = await runPsql(["-c", "select 1"], login);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /FATAL: {2}connection denied by pgrelay policy rule "no-scram"\nDETAIL: {2}user "scram_user", database "postgres", application_name "probe", source 127\.0\.0\.1, tls false/,
    );
    const byIndex = await runPsql(["-c", "select 1"], { ...login, ...cluster.users.md5 });
    assert.match(byIndex.stderr, /FATAL: {2}connection denied by pgrelay policy rule "rules\[1\]"/);
    const viaPg = await connect(proxy, { ...cluster.users.scram, application_name: "probe" });
    assert.equal(viaPg.ok ? "allowed" : viaPg.code, "28000");
    await sleep(200);
    assert.equal(connectionsLogged(), before, "the server logged no connection for the denied clients");
    const probes = "select count(*)::int as n from pg_stat_activity where application_name = 'probe'";
    assert.deepEqual(await superuser(probes), [{ n: 0 }]);
    // The control: an allowed client is seen by the server, so the checks above can fail.
    const allowed = await connect(proxy, { ...cluster.users.trust, application_name: "probe" });
    assert.equal(allowed.ok, true);
    await sleep(100);
    assert.ok(
      connectionsLogged() > before + 1,
      "the server logs an allowed connection (and the superuser's)",
    );
    assert.deepEqual(await superuser(probes), [{ n: 1 }]);
  });

  it("limits refuse with 53300 at exactly the configured count and free the slot when a session ends", async () => {
    const proxy = await start({ limits: parseLimits({ per_user: 2 }) });
    const first = await connect(proxy, cluster.users.scram);
    const second = await connect(proxy, cluster.users.scram);
    assert.ok(first.ok && second.ok);
    const third = await connect(proxy, cluster.users.scram);
    assert.deepEqual(third.ok ? "allowed" : [third.code, third.message], [
      "53300",
      'too many connections for user "scram_user": pgrelay allows 2 (per_user)',
    ]);
    const psql = await runPsql(["-c", "select 1"], {
      host: "127.0.0.1",
      port: proxy.address.port,
      ...cluster.users.scram,
    });
    assert.match(
      psql.stderr,
      /FATAL: {2}too many connections for user "scram_user": pgrelay allows 2 \(per_user\)/,
    );
    assert.equal((await connect(proxy, cluster.users.md5)).ok, true, "another user is not disturbed");
    assert.equal(
      (await first.client.query("select 'still here' as s")).rows[0].s,
      "still here",
      "live sessions are not disturbed",
    );
    await first.client.end();
    await sleep(100);
    assert.equal((await connect(proxy, cluster.users.scram)).ok, true, "the slot was freed");

    const perDatabase = await start({ limits: parseLimits({ per_database: 1 }) });
    assert.equal((await connect(perDatabase, { ...cluster.users.scram, database: "app" })).ok, true);
    const full = await connect(perDatabase, { ...cluster.users.md5, database: "app" });
    assert.deepEqual(full.ok ? "allowed" : [full.code, full.message], [
      "53300",
      'too many connections to database "app": pgrelay allows 1 (per_database)',
    ]);
    assert.equal((await connect(perDatabase, { ...cluster.users.md5, database: "postgres" })).ok, true);

    const total = await start({ limits: parseLimits({ max_connections: 2, per_source: 3 }) });
    assert.equal((await connect(total, cluster.users.scram)).ok, true);
    assert.equal((await connect(total, cluster.users.md5)).ok, true);
    const over = await connect(total, cluster.users.trust);
    assert.deepEqual(over.ok ? "allowed" : [over.code, over.message], [
      "53300",
      "too many connections: pgrelay allows 2 at once (max_connections)",
    ]);

    const perSource = await start({ limits: parseLimits({ per_source: 1 }) });
    assert.equal((await connect(perSource, cluster.users.scram)).ok, true);
    const second_ = await connect(perSource, cluster.users.md5);
    assert.deepEqual(second_.ok ? "allowed" : [second_.code, second_.message], [
      "53300",
      "too many connections from 127.0.0.1: pgrelay allows 1 (per_source)",
    ]);
  });

  it("the connect rate trips after the burst and recovers at the configured rate", async () => {
    const proxy = await start({ limits: parseLimits({ connect_rate: { per_source: 1, burst: 3 } }) });
    const burst = await Promise.all([1, 2, 3, 4].map(() => connect(proxy, cluster.users.trust)));
    const refused = burst.filter((outcome) => !outcome.ok) as Array<
      { ok: false; code: string; message: string }
    >;
    assert.equal(burst.filter((outcome) => outcome.ok).length, 3, "the burst of 3 passes");
    assert.deepEqual(refused.map((r) => [r.code, r.message]), [[
      "53300",
      "too many connection attempts from 127.0.0.1: pgrelay allows 1 a second (burst 3)",
    ]]);
    await sleep(1100);
    assert.equal((await connect(proxy, cluster.users.trust)).ok, true, "one token back after a second");
    const again = await connect(proxy, cluster.users.trust);
    assert.equal(again.ok ? "allowed" : again.code, "53300");
  });

  it("bandwidth_per_session paces a large result toward the client without buffering it", async () => {
    const sql = "select repeat('x', 6000000) as big";
    const free = await start({});
    const capped = await start({ limits: parseLimits({ bandwidth_per_session: "2MB/s" }) });
    const time = async (proxy: Proxy) => {
      const outcome = await connect(proxy, cluster.users.scram);
      assert.ok(outcome.ok);
      let peakBuffered = 0;
      const sampler = setInterval(() => peakBuffered = Math.max(peakBuffered, proxy.bufferedBytes), 20);
      const started = performance.now();
      const rows = (await outcome.client.query(sql)).rows;
      clearInterval(sampler);
      assert.equal(rows[0].big.length, 6_000_000);
      return { ms: performance.now() - started, peakBuffered };
    };
    const fast = await time(free);
    const slow = await time(capped);
    // 2 MB of budget at once, then 4 MB at 2 MB/s: about 2 s.
    assert.ok(fast.ms < 1500, `uncapped took ${fast.ms} ms`);
    assert.ok(slow.ms > 1700 && slow.ms < 8000, `capped took ${slow.ms} ms`);
    assert.ok(slow.peakBuffered < 1_000_000, `pgrelay buffered ${slow.peakBuffered} bytes`);
  });
});
