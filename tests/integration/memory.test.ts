/**
 * Constant memory: pgrelay relays results far larger than its own footprint, to a slow reader and as one
 * huge DataRow, without holding them. The proxy runs as a child process so its RSS can be read from /proc.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { memoryOf, type PgrelayProcess, spawnPgrelay } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { frontend } from "../support/raw_client.ts";

const MiB = 1024 * 1024;
/** Allowed growth of the proxy's peak RSS while relaying hundreds of MB. */
const MAX_GROWTH = 64 * MiB;

/**
 * Runs one simple query as trust_user over a plain socket, reading at most `bytesPerSecond`, and returns
 * the number of bytes received and a hash of them, without keeping them.
 */
function slowQuery(port: number, user: string, sql: string, bytesPerSecond: number): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1");
    const hash = createHash("sha256");
    const started = Date.now();
    let bytes = 0;
    let phase: "startup" | "query" = "startup";
    let tail = new Uint8Array(0);
    socket.on("connect", () => socket.write(frontend.startupMessage({ user, database: "postgres" })));
    socket.on("error", reject);
    socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(tail.length + chunk.length);
      joined.set(tail);
      joined.set(chunk, tail.length);
      tail = joined.subarray(Math.max(0, joined.length - 6));
      const ready = tail.length === 6 && tail[0] === 0x5a && tail[4] === 5; // ReadyForQuery at the end
      if (phase === "startup") {
        if (ready) {
          phase = "query";
          socket.write(frontend.query(sql));
        }
        return;
      }
      bytes += chunk.length;
      hash.update(chunk);
      if (ready) {
        socket.end();
        resolve({ bytes, sha256: hash.digest("hex") });
        return;
      }
      const aheadMs = (bytes / bytesPerSecond) * 1000 - (Date.now() - started);
      if (aheadMs > 5) {
        socket.pause();
        setTimeout(() => socket.resume(), aheadMs);
      }
    });
  });
}

describe("memory stays bounded", () => {
  let cluster: PostgresCluster;
  let proxy: PgrelayProcess;

  before(async () => {
    cluster = await startPostgres();
    proxy = await spawnPgrelay(["--upstream", `127.0.0.1:${cluster.port}`]);
  });
  after(async () => {
    await proxy?.stop();
    await cluster?.stop();
  });

  it("a slow client reading a 330 MB result: pgrelay's peak RSS grows by less than 64 MiB", async () => {
    const user = cluster.users.trust.user;
    // Warm up, so the baseline includes the relay's steady state.
    await slowQuery(proxy.address.port, user, "select repeat('w', 1000) from generate_series(1, 2000)", 1e9);
    const before = await memoryOf(proxy.pid);
    const sql = "select repeat('x', 8192) from generate_series(1, 40000)";
    const relayed = await slowQuery(proxy.address.port, user, sql, 60 * MiB);
    const afterwards = await memoryOf(proxy.pid);
    assert.ok(relayed.bytes > 40000 * 8192, `received ${relayed.bytes} bytes`);
    const direct = await slowQuery(cluster.port, user, sql, 1e9);
    assert.equal(relayed.sha256, direct.sha256, "the relayed result is byte-identical to the direct one");
    const growth = afterwards.peak - before.peak;
    assert.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB (from ${(before.peak / MiB).toFixed(1)} MiB)`);
  });

  it("one 100 MB DataRow passes through without being held whole", async () => {
    const user = cluster.users.trust.user;
    const before = await memoryOf(proxy.pid);
    const sql = "select repeat('y', 100 * 1024 * 1024) as big";
    const relayed = await slowQuery(proxy.address.port, user, sql, 200 * MiB);
    const afterwards = await memoryOf(proxy.pid);
    const direct = await slowQuery(cluster.port, user, sql, 1e9);
    assert.ok(relayed.bytes > 100 * MiB);
    assert.equal(relayed.sha256, direct.sha256);
    const growth = afterwards.peak - before.peak;
    assert.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  });
});
