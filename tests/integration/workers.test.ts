/**
 * `--workers 2`: two processes share the port; metrics combine; a cancel crossing workers still works; an
 * unknown user's mock SCRAM salt is the same whichever worker answers.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { type PgrelayProcess, spawnPgrelay } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { authCode, BackendError, frontend, RawClient } from "../support/raw_client.ts";
import { sleep, waitFor } from "../support/wait.ts";



/** JSON log lines of the proxy (workers' lines carry "worker"). */
const events = (proxy: PgrelayProcess, event: string) =>
  proxy.stderr().split("\n").filter((l) => l.includes(`"event":"${event}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);

describe("--workers", () => {
  let cluster: PostgresCluster;
  let proxy: PgrelayProcess;
  const login = () => ({ host: "127.0.0.1", port: proxy.address.port, ...cluster.users.scram, database: "postgres" });

  before(async () => {
    cluster = await startPostgres();
    proxy = await spawnPgrelay(["--upstream", `127.0.0.1:${cluster.port}`, "--workers", "2", "--admin", "127.0.0.1:0"]);
    await waitFor(() => events(proxy, "listening").some((e) => e.workers === 2), "both workers listening");
    await waitFor(() => events(proxy, "worker_admin_listening").length === 2, "both worker admin endpoints");
  });
  after(async () => {
    if (proxy) assert.equal(await proxy.stop("SIGTERM"), 0, "the supervisor exits 0 after SIGTERM");
    await cluster?.stop();
  });

  it("spreads connections over both workers, and /metrics combines them with a worker label", async () => {
    const clients = Array.from({ length: 16 }, () => new pg.Client(login()));
    await Promise.all(clients.map((c) => c.connect()));
    await Promise.all(clients.map((c) => c.query("select 1")));
    await Promise.all(clients.map((c) => c.end()));
    await sleep(200);
    const workers = new Set(events(proxy, "session_ready").map((e) => e.worker));
    assert.deepEqual([...workers].sort(), [1, 2]);
    const text = await (await fetch(`http://127.0.0.1:${proxy.admin!.port}/metrics`)).text();
    const ok = [1, 2].map((w) => {
      const line = text.split("\n").find((l) => l.startsWith(`pgrelay_client_connections_total{worker="${w}",outcome="ok"} `));
      return Number(line?.split(" ")[1] ?? 0);
    });
    assert.equal(ok[0]! + ok[1]!, 16);
    assert.equal(text.match(/^# TYPE pgrelay_client_connections_total counter$/gm)?.length, 1, "one header per family");
    assert.equal((await fetch(`http://127.0.0.1:${proxy.admin!.port}/readyz`)).status, 200);
  });

  it("a CancelRequest that lands on the other worker still cancels the query", async () => {
    const client = new pg.Client(login());
    await client.connect();
    try {
      const key = client as unknown as { processID: number; secretKey: number };
      const holderOf = () => events(proxy, "session_ready").find((e) => e.backend_pid === key.processID)?.worker;
      await waitFor(() => holderOf() !== undefined, "the session's log line, which names its worker");
      const holder = holderOf();
      let crossed = false;
      for (let attempt = 0; attempt < 40 && !crossed; attempt++) {
        const query = client.query("select pg_sleep(10)").then(() => "finished", (e: { code?: string }) => e.code);
        await sleep(100);
        const before = events(proxy, "cancel_request").length;
        const canceller = await RawClient.connect("127.0.0.1", proxy.address.port);
        canceller.sendBytes(frontend.cancelRequest(key.processID, key.secretKey));
        await canceller.readRawUntilClose();
        assert.equal(await query, "57014");
        await waitFor(() => events(proxy, "cancel_request").length > before, "the cancel log line");
        crossed = events(proxy, "cancel_request").at(-1)!.worker !== holder;
      }
      assert.ok(crossed, "some cancel was handled by the worker not holding the session");
    } finally {
      await client.end();
    }
  });

  it("in auth.mode scram every worker gives an unknown user the same mock salt", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgrelay-workers-"));
    const authFile = join(dir, "userlist.txt");
    await writeFile(authFile, "; nobody is listed\n", { mode: 0o600 });
    const scram = await spawnPgrelay(["--upstream", `127.0.0.1:${cluster.port}`, "--workers", "2", "--auth-mode", "scram", "--auth-file", authFile]);
    try {
      await waitFor(() => events(scram, "listening").some((e) => e.workers === 2), "both workers listening");
      const saltOfOneAttempt = async () => {
        const client = await RawClient.connect("127.0.0.1", scram.address.port);
        client.startup({ user: "nobody", database: "postgres" });
        const error = await client.authenticate("x").then(() => undefined, (e: unknown) => e);
        await client.close();
        assert.ok(error instanceof BackendError && error.code === "28P01", String(error));
        const serverFirst = error.messages.find((m) => m.type === "R" && authCode(m.body) === 11)!;
        return /,s=([^,]+),i=4096$/.exec(new TextDecoder().decode(serverFirst.body.subarray(4)))?.[1];
      };
      const salts = new Set<string | undefined>();
      const answeredBy = () => new Set(events(scram, "auth_failed").map((e) => e.worker));
      for (let attempt = 0; attempt < 40 && (attempt < 4 || answeredBy().size < 2); attempt++) salts.add(await saltOfOneAttempt());
      await waitFor(() => answeredBy().size === 2, "attempts answered by both workers");
      assert.equal(salts.size, 1, `one salt across workers, got ${[...salts].join(", ")}`);
      assert.match([...salts][0] ?? "", /^[A-Za-z0-9+/]{22}==$/);
    } finally {
      assert.equal(await scram.stop("SIGTERM"), 0);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("restarts a worker that dies", async () => {
    const ready = events(proxy, "listening").filter((e) => e.worker === 1).length;
    const workerPid = events(proxy, "listening").find((e) => e.worker === 1)?.pid as number;
    assert.ok(workerPid > 0, "worker 1's pid is in its log");
    process.kill(workerPid, "SIGKILL");
    await waitFor(() => events(proxy, "worker_exited").length === 1, "the supervisor noticing");
    await waitFor(() => events(proxy, "listening").filter((e) => e.worker === 1).length === ready + 1, "worker 1 listening again");
    const client = new pg.Client(login());
    await client.connect();
    assert.equal((await client.query("select 2 as two")).rows[0].two, 2);
    await client.end();
  });
});
