/**
 * Policy, limits and audit decide on the facts the server applies, not on the raw startup parameters: an empty
 * database, names over 63 bytes, replication connections, and application_name set through `options`.
 * Each case is checked against real PostgreSQL directly (where the connection lands) and through pgrelay.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuditLog } from "../../src/audit/audit_log.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import { parseLimits } from "../../src/limits/limits_schema.ts";
import { parsePolicy } from "../../src/policy/policy_schema.ts";
import { runPsql } from "../support/clients.ts";
import { MemoryAuditWriter } from "../support/memory_audit_writer.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { BackendError, dataRowValues, RawClient } from "../support/raw_client.ts";

const APP = { user: "app", password: "app-pass-1" };
const REPL = { user: "repl", password: "repl-pass-1" };
const LONG_DB = "d".repeat(63);

type Outcome = { ok: true; client: RawClient } | { ok: false; code: string; message: string };

describe("policy, limits and audit see the names the server uses", () => {
  let cluster: PostgresCluster;
  const proxies: Proxy[] = [];
  const open: RawClient[] = [];

  /** Raw startup with these exact parameters; authenticates with `password`. */
  const login = async (
    port: number,
    parameters: Record<string, string>,
    password: string,
  ): Promise<Outcome> => {
    const client = await RawClient.connect("127.0.0.1", port);
    client.startup(parameters);
    try {
      await client.authenticate(password);
      open.push(client);
      return { ok: true, client };
    } catch (error) {
      await client.close();
      if (!(error instanceof BackendError)) throw error;
      return { ok: false, code: error.code ?? "", message: error.fields["M"] ?? "" };
    }
  };
  /** The first column of each row `sql` returns (simple query protocol). */
  const query = async (client: RawClient, sql: string): Promise<(string | null)[]> => {
    client.query(sql);
    const messages = await client.readUntilReady();
    const error = messages.find((m) => m.type === "E");
    if (error) throw new Error(`query failed: ${new TextDecoder().decode(error.body)}`);
    return messages.filter((m) => m.type === "D").map((m) => dataRowValues(m.body)[0] ?? null);
  };
  const denied = (outcome: Outcome) => outcome.ok ? "allowed" : `${outcome.code} ${outcome.message}`;
  const start = async (options: Parameters<typeof startTestProxy>[1]) => {
    const proxy = await startTestProxy(cluster, options);
    proxies.push(proxy);
    return proxy.address.port;
  };

  before(async () => {
    cluster = await startPostgres({ hba: ["host replication repl 127.0.0.1/32 scram-sha-256"] });
    const admin = await RawClient.connect(cluster.host, cluster.port);
    admin.startup({ user: cluster.users.superuser.user, database: "postgres" });
    await admin.authenticate(cluster.users.superuser.password);
    await query(admin, `create role ${APP.user} login password '${APP.password}'`);
    await query(admin, `create role ${REPL.user} login replication password '${REPL.password}'`);
    await query(admin, `create database "${LONG_DB}"`);
    await admin.close();
  });
  after(async () => {
    await Promise.all(open.map((client) => client.close()));
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await cluster?.stop();
  });

  it('database="" is the user\'s database: a deny rule and per_database count it', async () => {
    const direct = await login(cluster.port, { user: APP.user, database: "" }, APP.password);
    assert.ok(direct.ok, denied(direct));
    assert.deepEqual(
      await query(direct.client, "select current_database()"),
      ["app"],
      "the server lands on app",
    );

    const port = await start({
      policy: parsePolicy({ rules: [{ name: "no-app", deny: { database: "app" } }] }),
    });
    const viaEmpty = await login(port, { user: APP.user, database: "" }, APP.password);
    assert.equal(denied(viaEmpty), '28000 connection denied by pgrelay policy rule "no-app"');
    const viaAbsent = await login(port, { user: APP.user }, APP.password);
    assert.equal(denied(viaAbsent), '28000 connection denied by pgrelay policy rule "no-app"');

    const limited = await start({ limits: parseLimits({ per_database: 1 }) });
    const first = await login(
      limited,
      { user: cluster.users.scram.user, database: "app" },
      cluster.users.scram.password,
    );
    assert.ok(first.ok, denied(first));
    const second = await login(limited, { user: APP.user, database: "" }, APP.password);
    assert.equal(
      denied(second),
      '53300 too many connections to database "app": pgrelay allows 1 (per_database)',
    );
  });

  it("a name over 63 bytes is cut as the server cuts it, so a rule on the 63-byte name holds", async () => {
    const longer = LONG_DB + "-and-more";
    const trust = cluster.users.trust.user;
    const direct = await login(cluster.port, { user: trust, database: longer }, "");
    assert.ok(direct.ok, denied(direct));
    assert.deepEqual(
      await query(direct.client, "select current_database()"),
      [LONG_DB],
      "the server truncates",
    );

    const writer = new MemoryAuditWriter();
    const audit = new AuditLog(
      { path: "-", queries: false, maxQueryLength: 100, redactLiterals: false },
      writer,
    );
    const port = await start({
      auditor: audit,
      policy: parsePolicy({ rules: [{ name: "no-long", deny: { database: LONG_DB } }] }),
    });
    const through = await login(port, { user: trust, database: longer }, "");
    assert.equal(denied(through), '28000 connection denied by pgrelay policy rule "no-long"');
    await audit.flush();
    const record = writer.events().find((event) => event.event === "denied");
    assert.equal(record?.database, LONG_DB, writer.text);
  });

  it("replication connections need a rule that names replication", async () => {
    const walParameters = { user: REPL.user, database: "postgres", replication: "true" };
    const direct = await login(cluster.port, walParameters, REPL.password);
    assert.ok(direct.ok, denied(direct));
    const system = await query(direct.client, "IDENTIFY_SYSTEM");
    assert.equal(system.length, 1, "the server opened a WAL sender");

    const databaseOnly = await start({
      policy: parsePolicy({
        default: "deny",
        rules: [{ name: "postgres-db", allow: { database: "postgres" } }],
      }),
    });
    const ordinary = await login(databaseOnly, { user: REPL.user, database: "postgres" }, REPL.password);
    assert.ok(ordinary.ok, "the rule admits an ordinary session");
    for (const replication of ["true", "on", "1", "database"]) {
      const wal = await login(databaseOnly, { ...walParameters, replication }, REPL.password);
      assert.equal(
        denied(wal),
        "28000 connection denied by pgrelay policy default (no rule matched)",
        replication,
      );
    }

    const writer = new MemoryAuditWriter();
    const audit = new AuditLog(
      { path: "-", queries: false, maxQueryLength: 100, redactLiterals: false },
      writer,
    );
    const logged: Array<{ event: string; fields: Record<string, unknown> }> = [];
    const named = await start({
      auditor: audit,
      logger: { log: (_level, event, fields = {}) => logged.push({ event, fields }) },
      policy: parsePolicy({
        default: "deny",
        rules: [{ name: "postgres-db", allow: { database: "postgres" } }, {
          name: "wal",
          allow: { user: "repl", replication: true },
        }],
      }),
    });
    const wal = await login(named, walParameters, REPL.password);
    assert.ok(wal.ok, denied(wal));
    assert.equal((await query(wal.client, "IDENTIFY_SYSTEM")).length, 1);
    const logical = await login(named, { ...walParameters, replication: "database" }, REPL.password);
    assert.equal(denied(logical), "28000 connection denied by pgrelay policy default (no rule matched)");
    await audit.flush();
    const start_ = writer.events().find((event) => event.event === "session_start");
    assert.deepEqual([start_?.replication, start_?.rule, start_?.database], ["true", "wal", ""], writer.text);
    const ready = logged.find((entry) => entry.event === "session_ready");
    assert.deepEqual(
      [ready?.fields.replication, ready?.fields.user],
      ["true", "repl"],
      "the log shows it too",
    );
    const refusal = writer.events().find((event) => event.event === "denied");
    assert.equal(refusal?.replication, "database", writer.text);

    // psql's own replication connection string, through the same proxy.
    const psql = await runPsql(["-d", "dbname=postgres replication=database", "-c", "IDENTIFY_SYSTEM"], {
      host: "127.0.0.1",
      port: named,
      ...REPL,
    });
    assert.equal(psql.code, 2, psql.stdout);
    assert.match(
      psql.stderr,
      /connection denied by pgrelay policy default \(no rule matched\)\nDETAIL: .*replication database/,
    );
  });

  it("application_name set through options is the one policy and audit see", async () => {
    const trust = cluster.users.trust.user;
    const evil = { user: trust, database: "postgres", options: "-c application_name=evil1" };
    const direct = await login(cluster.port, evil, "");
    assert.ok(direct.ok, denied(direct));
    assert.deepEqual(
      await query(direct.client, "show application_name"),
      ["evil1"],
      "the server applies options",
    );

    const writer = new MemoryAuditWriter();
    const audit = new AuditLog(
      { path: "-", queries: false, maxQueryLength: 100, redactLiterals: false },
      writer,
    );
    const port = await start({
      auditor: audit,
      policy: parsePolicy({ rules: [{ name: "no-evil", deny: { application_name: "evil*" } }] }),
    });
    for (
      const parameters of [
        evil,
        { user: trust, database: "postgres", options: "--application-name=evil2" },
        { user: trust, database: "postgres", options: "-c application_name=web", APPLICATION_NAME: "evil3" },
        { user: trust, database: "postgres", application_name: "web", Application_Name: "evil4" },
      ]
    ) {
      const through = await login(port, parameters, "");
      assert.equal(
        denied(through),
        '28000 connection denied by pgrelay policy rule "no-evil"',
        JSON.stringify(parameters),
      );
    }

    // Allowed: what pgrelay records is what the server shows.
    const good = await login(port, {
      user: trust,
      database: "postgres",
      options: "-c application_name=good\\ one",
    }, "");
    assert.ok(good.ok, denied(good));
    assert.deepEqual(await query(good.client, "show application_name"), ["good one"]);
    // psql sends application_name=psql itself, and a startup parameter wins over options.
    const psql = await runPsql(["-Atc", "show application_name"], {
      host: "127.0.0.1",
      port,
      user: trust,
      env: { PGOPTIONS: "-c application_name=evil5" },
    });
    assert.equal(psql.code, 0, psql.stderr);
    assert.equal(psql.stdout.trim(), "psql");
    await audit.flush();
    const started = writer.events().filter((event) => event.event === "session_start").map((e) =>
      e.application_name
    );
    assert.deepEqual(started, ["good one", "psql"], writer.text);
    const refused = writer.events().filter((event) => event.event === "denied").map((e) =>
      e.application_name
    );
    assert.deepEqual(refused, ["evil1", "evil2", "evil3", "evil4"]);
  });
});
