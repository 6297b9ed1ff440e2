/** Self-test of the replication rig: a streaming standby replays, is in recovery, and promotes to a new timeline. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { waitFor } from "./wait.ts";
import { type ReplicatedPair, startReplicatedPair } from "./replication.ts";

/** First 8 hex digits of the current WAL file name: the timeline, which changes at promotion. */
const TIMELINE = "select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)";

for (const version of [undefined, 18] as const) {
  describe(`test rig: startReplicatedPair (PostgreSQL ${version ?? "Debian"})`, () => {
    let pair: ReplicatedPair;

    before(async () => {
      pair = await startReplicatedPair(version === undefined ? {} : { version });
    });

    after(async () => {
      await pair?.stop();
    });

    it("runs the requested server version on both sides", async () => {
      const expected = version ?? pair.primary.version;
      assert.equal(pair.primary.version, expected);
      assert.equal(pair.standby.version, expected);
      assert.match(await pair.standby.sql("show server_version"), new RegExp(`^${expected}\\.`));
      assert.notEqual(pair.primary.port, pair.standby.port);
    });

    it("the standby is in recovery, streams through the slot and replays a write", async () => {
      assert.equal(await pair.primary.sql("select pg_is_in_recovery()"), "f");
      assert.equal(await pair.standby.sql("select pg_is_in_recovery()"), "t");
      assert.equal(await pair.primary.sql("select active from pg_replication_slots"), "t");
      await pair.primary.sql(
        "create table rig_replicated (v text); insert into rig_replicated values ('from primary')",
      );
      await pair.waitForReplay();
      assert.equal(await pair.standby.sql("select v from rig_replicated"), "from primary");
      await assert.rejects(
        pair.standby.sql("insert into rig_replicated values ('x')"),
        /read-only transaction/,
      );
    });

    it("sigstop freezes the primary's processes and sigcont thaws them", async () => {
      const pid = pair.primary.postmasterPid();
      assert.ok(pid !== undefined);
      pair.primary.sigstop();
      try {
        // SIGSTOP takes effect asynchronously: wait for the state letter to become T (stopped).
        await waitFor(
          () => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] === "T",
          "postmaster stopped",
        );
      } finally {
        pair.primary.sigcont();
      }
      assert.equal(await pair.primary.sql("select 1"), "1");
    });

    it("promotion makes the standby a primary on a new timeline; the old primary stops immediately", async () => {
      const before = await pair.primary.sql(TIMELINE);
      await pair.primary.stopImmediate();
      assert.equal(pair.primary.postmasterPid(), undefined);
      await pair.standby.promote();
      assert.equal(await pair.standby.sql("select pg_is_in_recovery()"), "f");
      const after = await pair.standby.sql(TIMELINE);
      assert.equal(Number.parseInt(after, 16), Number.parseInt(before, 16) + 1, `${before} -> ${after}`);
      await pair.standby.sql("insert into rig_replicated values ('after promotion')");
      assert.equal(await pair.standby.sql("select count(*) from rig_replicated"), "2");
    });

    it("the old primary restarted (no standby.signal) is a second primary on the old timeline: split brain", async () => {
      await pair.primary.start();
      assert.equal(await pair.primary.sql("select pg_is_in_recovery()"), "f");
      const [old, promoted] = [await pair.primary.sql(TIMELINE), await pair.standby.sql(TIMELINE)];
      assert.ok(
        Number.parseInt(promoted, 16) > Number.parseInt(old, 16),
        `promoted ${promoted} above old ${old}`,
      );
      assert.equal(
        await pair.primary.sql("select count(*) from rig_replicated"),
        "1",
        "the old primary missed the new write",
      );
    });
  });
}
