/**
 * Transaction pooling across a failover, with a real primary and streaming standby: clients connected
 * before the promotion, idle between transactions, get a server on the promoted host at their next
 * transaction with no error; a client inside a transaction on the old primary when it stops gets 08006.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { runPsql } from "../support/clients.ts";
import { type PgrelayProcess, spawnPgrelay } from "../support/pgrelay.ts";
import { type ReplicatedPair, startReplicatedPair } from "../support/replication.ts";
import { sleep } from "../support/wait.ts";

describe("transaction pooling across a failover", () => {
  let pair: ReplicatedPair;
  let relay: PgrelayProcess;
  let dir = "";

  const client = (name: string) =>
    new pg.Client({
      host: relay.address.hostname,
      port: relay.address.port,
      ...pair.primary.users.scram,
      database: "postgres",
      application_name: name,
    });

  before(async () => {
    pair = await startReplicatedPair();
    dir = await mkdtemp(join(tmpdir(), "pgrelay-pool-failover-"));
    const verifier = await runPsql(["-A", "-t", "-F", " ", "-c", "select '\"' || rolname || '\" \"' || rolpassword || '\"' from pg_authid where rolname = 'scram_user'"], {
      host: pair.primary.host, port: pair.primary.port, ...pair.primary.users.superuser, database: "postgres",
    });
    assert.equal(verifier.code, 0, verifier.stderr);
    const { user, password } = pair.primary.users.superuser;
    await writeFile(join(dir, "userlist.txt"), `"${user}" "${password}"\n${verifier.stdout}`, { mode: 0o600 });
    await writeFile(
      join(dir, "pgrelay.yaml"),
      `
auth: { mode: scram, file: ${JSON.stringify(join(dir, "userlist.txt"))} }
routing: { hold_timeout: 10s }
clusters:
  main:
    hosts: ["127.0.0.1:${pair.primary.port}", "127.0.0.1:${pair.standby.port}"]
    health: { interval: 300ms, timeout: 2s, user: ${user}, database: postgres }
routes:
  - name: app
    cluster: main
    target: primary
    pool: { mode: transaction, size: 3 }
`,
      { mode: 0o600 },
    );
    relay = await spawnPgrelay(["--config", join(dir, "pgrelay.yaml")]);
  });
  after(async () => {
    await relay?.stop("SIGKILL");
    await pair?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("idle clients move to the promoted primary with no error; one inside a transaction gets 08006", async () => {
    const idle = Array.from({ length: 6 }, (_, i) => client(`idle-${i}`));
    await Promise.all(idle.map((c) => c.connect()));
    const ports = async (c: pg.Client): Promise<{ port: number; standby: boolean }> =>
      (await c.query("select inet_server_port() as port, pg_is_in_recovery() as standby")).rows[0];
    for (const c of idle) assert.deepEqual(await ports(c), { port: pair.primary.port, standby: false });
    const busy = client("busy");
    await busy.connect();
    const busyError = new Promise<string | undefined>((resolve) => busy.on("error", (e: Error & { code?: string }) => resolve(e.code)));
    await busy.query("begin");
    await busy.query("select 1");

    await pair.waitForReplay();
    await pair.standby.promote();
    await pair.primary.stopImmediate();
    const lost = await Promise.race([
      busy.query("select 2").then(() => "(query succeeded)", (e: Error & { code?: string }) => e.code),
      busyError,
    ]);
    assert.equal(lost, "08006", "the client inside a transaction on the stopped primary learns it is gone");

    // Once health checks see the promotion, every idle client's next transaction runs on the new primary.
    const deadline = performance.now() + 30_000;
    for (const c of idle) {
      let row: { port: number; standby: boolean } | undefined;
      while (performance.now() < deadline) {
        const now = await ports(c);
        row = now;
        if (now.port === pair.standby.port) break;
        await sleep(100);
      }
      assert.deepEqual(row, { port: pair.standby.port, standby: false }, "no error, and the promoted host answers");
    }
    await Promise.all(idle.map((c) => c.end()));
    await busy.end().catch(() => {});
  });
});
