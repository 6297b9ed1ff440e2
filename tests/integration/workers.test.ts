/**
 * `--workers 2`: two processes share the port; metrics and /sessions combine; a terminate reaches the
 * worker holding the session; a cancel crossing workers still works; an unknown user's mock SCRAM salt is
 * the same whichever worker answers.
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
      const backend = Number((await client.query("select pg_backend_pid() as pid")).rows[0].pid);
      assert.notEqual(key.processID, backend, "the client holds pgrelay's key");
      const holderOf = () => events(proxy, "session_ready").find((e) => e.backend_pid === backend)?.worker;
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
        const handled = events(proxy, "cancel_request").at(-1)!;
        crossed = handled.worker !== holder;
        // A key of another worker's is handed to the worker that issued it (its loopback cancel listener).
        if (crossed) {
          assert.equal(handled.to_worker, holder);
          await waitFor(() => events(proxy, "cancel_from_worker").some((e) => e.worker === holder && e.key_pid === key.processID), "the holder's log line");
        }
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

  it("/sessions merges both workers' sessions, and a terminate reaches the worker that holds the session", async () => {
    const admin = `http://127.0.0.1:${proxy.admin!.port}`;
    const clients: pg.Client[] = [];
    const errors = new Map<pg.Client, string | undefined>();
    // The server's pid of each client (the key a client holds is pgrelay's; /sessions shows the server's).
    const backends = new Map<pg.Client, number>();
    const list = async () => {
      const response = await fetch(`${admin}/sessions`);
      assert.equal(response.status, 200);
      const body = await response.json() as { sessions: Array<{ id: string; worker: number; backend_pid: number | null; application_name: string }>; errors?: string[] };
      assert.equal(body.errors, undefined);
      return body.sessions.filter((s) => s.application_name === "merge-test");
    };
    try {
      // Connect until both workers hold a session (the kernel spreads connections; 40 tries is plenty).
      for (let i = 0; i < 40 && new Set((await list()).map((s) => s.worker)).size < 2; i++) {
        const client = new pg.Client({ ...login(), application_name: "merge-test" });
        client.on("error", (error: Error & { code?: string }) => errors.has(client) || errors.set(client, error.code));
        await client.connect();
        backends.set(client, Number((await client.query("select pg_backend_pid() as pid")).rows[0].pid));
        clients.push(client);
      }
      const rows = await list();
      assert.equal(rows.length, clients.length);
      assert.deepEqual([...new Set(rows.map((s) => s.worker))].sort(), [1, 2]);
      assert.equal(new Set(rows.map((s) => s.id)).size, rows.length, "ids are unique across workers");
      const victim = rows.find((s) => s.worker === 2)!;
      const client = clients.find((c) => backends.get(c) === victim.backend_pid)!;
      assert.ok(client, "the client of the listed session");
      const done = await fetch(`${admin}/sessions/${victim.id}/terminate`, { method: "POST" });
      assert.equal(done.status, 200, await done.text());
      await waitFor(() => errors.has(client), "the error on the terminated client");
      assert.equal(errors.get(client), "57P01");
      await waitFor(async () => !(await list()).some((s) => s.id === victim.id), "the session gone from /sessions");
      assert.equal((await list()).length, clients.length - 1);
      const unknown = await fetch(`${admin}/sessions/${victim.id}/terminate`, { method: "POST" });
      assert.equal(unknown.status, 404);
      assert.match((await unknown.json() as { error: string }).error, /no live session/);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }
  });

  it("with admin.token_file the supervisor and the workers both want the token, which it passes on", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgrelay-workers-"));
    const tokenFile = join(dir, "admin.token");
    const token = "workers-token-0123456789abcdef";
    await writeFile(tokenFile, token + "\n", { mode: 0o600 });
    const guarded = await spawnPgrelay(["--upstream", `127.0.0.1:${cluster.port}`, "--workers", "2", "--admin", "127.0.0.1:0", "--admin-token-file", tokenFile]);
    try {
      await waitFor(() => events(guarded, "worker_admin_listening").length === 2, "both worker admin endpoints");
      const admin = `http://127.0.0.1:${guarded.admin!.port}`;
      assert.equal((await fetch(`${admin}/sessions`)).status, 401);
      const ok = await fetch(`${admin}/sessions`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { sessions: [] }, "both workers answered the forwarded token");
      assert.equal((await fetch(`${admin}/readyz`)).status, 200, "probes need no token");
      const worker = events(guarded, "worker_admin_listening")[0]!.admin as string;
      assert.equal((await fetch(`http://${worker}/sessions`)).status, 401, "a worker's own endpoint wants the token too");
      const next = "workers-token-second-0123456789";
      await writeFile(tokenFile, next + "\n");
      process.kill(guarded.pid, "SIGHUP");
      const statusWith = async (bearer: string) => (await fetch(`${admin}/sessions`, { headers: { authorization: `Bearer ${bearer}` } })).status;
      await waitFor(async () => await statusWith(next) === 200, "the new token accepted by the supervisor and both workers");
      assert.equal(await statusWith(token), 401, "the old token is refused after SIGHUP");
    } finally {
      assert.equal(await guarded.stop("SIGTERM"), 0);
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
