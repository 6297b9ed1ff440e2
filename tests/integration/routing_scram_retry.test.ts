/**
 * auth.mode scram with routing: pgrelay logs in to the server itself, so when the host it picked turns out
 * to have the wrong role for the route's target (its health check is stale: the standby was promoted since),
 * it tries the next candidate before the client sees anything. Two primary+standby pairs give a cluster of
 * two standbys; one is promoted after pgrelay's only health check (interval 1h).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { type PgrelayProcess, spawnPgrelay } from "../support/pgrelay.ts";
import { type ReplicatedPair, startReplicatedPair } from "../support/replication.ts";

describe("routing in auth.mode scram: a host of the wrong role is skipped transparently", () => {
  let a: ReplicatedPair;
  let b: ReplicatedPair;
  let dir = "";
  let relay: PgrelayProcess;

  before(async () => {
    [a, b] = await Promise.all([startReplicatedPair(), startReplicatedPair()]);
    // pgrelay logs in with the ClientKey its auth.file verifier yields: both pairs must store the same one.
    const { user, password } = a.primary.users.scram;
    const verifier = await a.primary.sql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${user}'`);
    await b.primary.sql(`ALTER ROLE ${user} PASSWORD '${verifier}'`);
    await b.waitForReplay();
    dir = await mkdtemp(join(tmpdir(), "pgrelay-routing-scram-"));
    const superuser = a.primary.users.superuser;
    await writeFile(
      join(dir, "userlist.txt"),
      `"${user}" "${verifier}"\n"${superuser.user}" "${superuser.password}"\n`,
      { mode: 0o600 },
    );
    assert.ok(password);
    await writeFile(join(dir, "pgrelay.yaml"), `
auth: { mode: scram, file: ${JSON.stringify(join(dir, "userlist.txt"))} }
routing: { hold_timeout: 3s }
clusters:
  reads:
    hosts: ["127.0.0.1:${a.standby.port}", "127.0.0.1:${b.standby.port}"]
    health: { interval: 1h, timeout: 5s, user: postgres }
routes:
  - { name: reads, cluster: reads, target: standby }
`, { mode: 0o600 });
    relay = await spawnPgrelay(["--config", join(dir, "pgrelay.yaml")]);
  });
  after(async () => {
    await relay?.stop("SIGKILL");
    await Promise.all([a?.stop(), b?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("every session reaches the standby that still is one, and the log names the skipped host", async () => {
    // The one check has run: both hosts are standbys as far as pgrelay knows.
    const deadline = Date.now() + 30_000;
    while (!relay.stderr().includes('"event":"upstream_host_changed"') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await a.standby.promote();
    for (let i = 0; i < 3; i++) {
      const c = new pg.Client({
        host: relay.address.hostname,
        port: relay.address.port,
        ...a.primary.users.scram,
        database: "postgres",
        application_name: `reader-${i}`,
      });
      await c.connect();
      try {
        const row = (await c.query<{ port: number; r: boolean }>(
          "SELECT inet_server_port() AS port, pg_is_in_recovery() AS r",
        )).rows[0]!;
        assert.deepEqual(row, { port: b.standby.port, r: true });
      } finally {
        await c.end();
      }
    }
    assert.match(
      relay.stderr(),
      new RegExp(`"event":"wrong_server_role_retry".*"host":"127.0.0.1:${a.standby.port}"`),
    );
  });
});
