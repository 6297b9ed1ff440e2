/** The health check's SQL against a real PostgreSQL primary, read by the same parser the router uses. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { HEALTH_QUERY, lagBytes, parseHealthRow, parseLsn } from "../../src/routing/health_probe.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";

describe("health probe against PostgreSQL", () => {
  let cluster: PostgresCluster;
  let client: pg.Client;

  before(async () => {
    cluster = await startPostgres();
    client = new pg.Client({
      host: cluster.host,
      port: cluster.port,
      ...cluster.users.superuser,
      database: "postgres",
    });
    await client.connect();
  });
  after(async () => {
    await client?.end().catch(() => {});
    await cluster?.stop();
  });

  /** Runs the probe as a simple query and hands the DataRow's text values to the parser, untouched. */
  const probe = async (text = HEALTH_QUERY) => {
    const result = await client.query<(string | null)[]>({
      text,
      rowMode: "array",
      types: { getTypeParser: () => (value: string) => value },
    });
    assert.equal(result.rows.length, 1);
    return { raw: result.rows[0]!, parsed: parseHealthRow(result.rows[0]!) };
  };

  it("reads a primary's role, current WAL position and timeline in one round trip", async () => {
    const { raw, parsed } = await probe();
    assert.equal(parsed.role, "primary");
    assert.equal(raw[3], null, "no received_tli on a primary");
    const facts = await client.query<{ lsn: string; tli: number }>(
      "SELECT pg_current_wal_lsn()::text AS lsn, (pg_control_checkpoint()).timeline_id AS tli",
    );
    assert.equal(
      parsed.timeline,
      facts.rows[0]!.tli,
      "a fresh cluster is on timeline 1, as its checkpoint says",
    );
    assert.equal(parsed.timeline, 1);
    assert.ok(parsed.lsn !== undefined && parsed.lsn <= parseLsn(facts.rows[0]!.lsn));
  });

  it("sees the position move and measures bytes as pg_wal_lsn_diff does", async () => {
    const before = await probe();
    await client.query("CREATE TEMP TABLE health_probe_wal AS SELECT generate_series(1, 20000) AS n");
    await client.query("CREATE TABLE health_probe_logged AS SELECT generate_series(1, 20000) AS n");
    const later = await probe();
    const diff = await client.query<{ bytes: string }>({
      text: "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text AS bytes",
      values: [later.raw[1], before.raw[1]],
    });
    const measured = lagBytes(later.parsed.lsn!, before.parsed.lsn!);
    assert.ok(measured > 0n, "writing moved the WAL position");
    assert.equal(measured, BigInt(diff.rows[0]!.bytes));
    assert.equal(later.parsed.timeline, 1);
  });

  it("runs the standby branch without error (forced here; a real standby is another test's rig)", async () => {
    const forced = HEALTH_QUERY.replace("SELECT pg_is_in_recovery() AS r", "SELECT true AS r");
    assert.notEqual(forced, HEALTH_QUERY);
    const { raw, parsed } = await probe(forced);
    // On a primary pg_last_wal_replay_lsn() is NULL and pg_stat_wal_receiver has no row.
    assert.deepEqual(raw, ["t", null, null, null]);
    assert.deepEqual(parsed, { role: "standby", lsn: undefined, timeline: undefined });
  });
});
