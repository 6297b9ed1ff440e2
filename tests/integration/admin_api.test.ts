/**
 * The admin API beyond metrics: GET /sessions, POST /sessions/<id>/terminate, the bearer token of
 * admin.token_file, and the refusal of a non-loopback admin address without one. pgrelay runs as a process
 * against a real PostgreSQL; clients are psql and npm `pg`.
 */
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { type PgrelayProcess, runPgrelay, spawnPgrelay } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { waitFor } from "../support/wait.ts";

interface SessionRow {
  id: string;
  user: string;
  database: string;
  application_name: string;
  client: string;
  route: string | null;
  host: string | null;
  state: string;
  backend_pid: number | null;
  bytes_from_client: number;
  bytes_from_server: number;
  started_at: string;
  worker?: number;
}

async function call(
  proxy: PgrelayProcess,
  path: string,
  init: { method?: string; token?: string } = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${proxy.admin!.port}${path}`, {
    method: init.method ?? "GET",
    headers: init.token === undefined ? {} : { authorization: `Bearer ${init.token}` },
  });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

async function sessions(proxy: PgrelayProcess, token?: string): Promise<SessionRow[]> {
  const answer = await call(proxy, "/sessions", token === undefined ? {} : { token });
  assert.equal(answer.status, 200, answer.body);
  return (JSON.parse(answer.body) as { sessions: SessionRow[] }).sessions;
}

/** The local address of an npm `pg` client's socket, as pgrelay sees the client. */
const localAddressOf = (client: pg.Client) => {
  const stream =
    (client as unknown as { connection: { stream: { localAddress: string; localPort: number } } }).connection
      .stream;
  return `${stream.localAddress}:${stream.localPort}`;
};

describe("admin API: sessions and token", () => {
  let cluster: PostgresCluster;
  let dir = "";
  const login = (port: number, applicationName: string) => ({
    host: "127.0.0.1",
    port,
    ...cluster.users.scram,
    database: "postgres",
    application_name: applicationName,
  });

  before(async () => {
    cluster = await startPostgres();
    dir = await mkdtemp(join(tmpdir(), "pgrelay-admin-"));
  });
  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("GET /sessions lists a live session; terminate ends it with 57P01, audited; unknown ids get 404", async () => {
    const file = join(dir, "audit.yaml");
    await writeFile(file, `upstream: 127.0.0.1:${cluster.port}\naudit: { path: "-", queries: false }\n`);
    const proxy = await spawnPgrelay(["--config", file, "--admin", "127.0.0.1:0"]);
    const client = new pg.Client(login(proxy.address.port, "admin-api-test"));
    const errors: Array<string | undefined> = [];
    client.on("error", (error: Error & { code?: string }) => errors.push(error.code));
    try {
      await client.connect();
      await client.query("select repeat('x', 5000) as filler");
      // The server's real pid (the client holds pgrelay's cancel key, whose pid is not the server's).
      const pid = Number((await client.query("select pg_backend_pid() as pid")).rows[0].pid);
      assert.notEqual((client as unknown as { processID: number }).processID, pid);
      const mine = (await sessions(proxy)).filter((s) => s.application_name === "admin-api-test");
      assert.equal(mine.length, 1, JSON.stringify(mine));
      const row = mine[0]!;
      assert.match(row.id, /^[0-9a-f]{6}-\d+$/);
      assert.equal(row.user, cluster.users.scram.user);
      assert.equal(row.database, "postgres");
      assert.equal(row.client, localAddressOf(client));
      assert.equal(row.host, `127.0.0.1:${cluster.port}`);
      assert.equal(row.route, "upstream", "the upstream: form is one route named upstream");
      assert.equal(row.state, "idle");
      assert.equal(row.backend_pid, pid);
      assert.ok(
        row.bytes_from_client > 50 && row.bytes_from_client < 2000,
        `bytes from client ${row.bytes_from_client}`,
      );
      assert.ok(
        row.bytes_from_server > 5000 && row.bytes_from_server < 20000,
        `bytes from server ${row.bytes_from_server}`,
      );
      assert.ok(Math.abs(Date.parse(row.started_at) - Date.now()) < 60_000);

      const sleeping = client.query("select pg_sleep(0.3)");
      await waitFor(
        async () => (await sessions(proxy)).find((s) => s.id === row.id)?.state === "active",
        "state active during a query",
      );
      await sleeping;
      await client.query("begin");
      assert.equal((await sessions(proxy)).find((s) => s.id === row.id)?.state, "idle in transaction");

      assert.equal((await call(proxy, `/sessions/${row.id}/terminate`)).status, 405, "terminate needs POST");
      const done = await call(proxy, `/sessions/${row.id}/terminate`, { method: "POST" });
      assert.equal(done.status, 200, done.body);
      assert.equal(JSON.parse(done.body).terminated, row.id);
      await waitFor(() => errors.length > 0, "the error on the terminated client");
      assert.equal(errors[0], "57P01");
      await waitFor(
        async () => !(await sessions(proxy)).some((s) => s.id === row.id),
        "the session gone from /sessions",
      );

      const again = await call(proxy, `/sessions/${row.id}/terminate`, { method: "POST" });
      assert.equal(again.status, 404);
      assert.match(again.headers.get("content-type") ?? "", /application\/json/);
      assert.match(JSON.parse(again.body).error, /no live session with id/);
      assert.equal((await call(proxy, "/sessions/nope-1/terminate", { method: "POST" })).status, 404);

      await waitFor(() => proxy.stdout().includes('"event":"terminated"'), "the audit line");
      const audit = proxy.stdout().split("\n").filter((l) => l.includes(`"session":"${row.id}"`)).map((l) =>
        JSON.parse(l)
      );
      const terminated = audit.find((e) => e.event === "terminated");
      assert.equal(terminated?.reason, "admin_terminated");
      assert.equal(terminated?.sqlstate, "57P01");
      await waitFor(
        () =>
          proxy.stdout().includes(`"reason":"admin_terminated"`) &&
          proxy.stderr().includes('"event":"session_terminated"'),
        "session_end and log line",
      );
    } finally {
      await client.end().catch(() => {});
      await proxy.stop();
    }
  });

  it("with admin.token_file: 401 without the token, 200 with it, probes open; SIGHUP re-reads the token", async () => {
    const tokenFile = join(dir, "admin.token");
    const token = "first-token-0123456789abcdef";
    await writeFile(tokenFile, token + "\n", { mode: 0o600 });
    const proxy = await spawnPgrelay([
      "--upstream",
      `127.0.0.1:${cluster.port}`,
      "--admin",
      "127.0.0.1:0",
      "--admin-token-file",
      tokenFile,
    ]);
    try {
      const bare = await call(proxy, "/sessions");
      assert.equal(bare.status, 401);
      assert.match(bare.headers.get("www-authenticate") ?? "", /^Bearer\b/);
      assert.equal((await call(proxy, "/sessions", { token: "wrong-token-0123456789abcdef" })).status, 401);
      assert.equal((await call(proxy, "/metrics")).status, 401);
      assert.equal((await call(proxy, "/sessions/x-1/terminate", { method: "POST" })).status, 401);
      assert.equal((await call(proxy, "/sessions", { token })).status, 200);
      assert.equal((await call(proxy, "/metrics", { token })).status, 200);
      assert.deepEqual([(await call(proxy, "/healthz")).status, (await call(proxy, "/healthz")).body], [
        200,
        "ok\n",
      ]);
      const ready = await call(proxy, "/readyz");
      assert.deepEqual(
        [ready.status, ready.body],
        [200, "ready\n"],
        "a probe without the token sees no addresses",
      );
      assert.match((await call(proxy, "/readyz", { token })).body, /^ready: listening on/);

      await writeFile(tokenFile, "second-token-0123456789abcdef\n");
      process.kill(proxy.pid, "SIGHUP");
      await waitFor(() => proxy.stderr().includes('"event":"config_reloaded"'), "reload");
      assert.equal((await call(proxy, "/sessions", { token })).status, 401, "the old token no longer works");
      assert.equal((await call(proxy, "/sessions", { token: "second-token-0123456789abcdef" })).status, 200);
    } finally {
      await proxy.stop();
    }
  });

  it("--check and startup refuse a non-loopback admin address without admin.token_file, and a readable token file", async () => {
    const upstream = ["--upstream", `127.0.0.1:${cluster.port}`];
    const open = await runPgrelay([...upstream, "--admin", "0.0.0.0:0", "--check"]);
    assert.equal(open.code, 2, open.stderr);
    assert.match(open.stderr, /admin: listen "0\.0\.0\.0" is not a loopback address.*set admin\.token_file/);
    const started = await runPgrelay([...upstream, "--admin", "0.0.0.0:0", "--listen", "127.0.0.1:0"]);
    assert.equal(started.code, 2, "startup refuses it too");
    assert.match(started.stderr, /not a loopback address/);
    for (const loopback of ["127.0.0.1:0", "[::1]:0", "localhost:0"]) {
      assert.equal((await runPgrelay([...upstream, "--admin", loopback, "--check"])).code, 0, loopback);
    }
    const tokenFile = join(dir, "check.token");
    await writeFile(tokenFile, "check-token-0123456789abcdef\n", { mode: 0o600 });
    const withToken = await runPgrelay([
      ...upstream,
      "--admin",
      "0.0.0.0:0",
      "--admin-token-file",
      tokenFile,
      "--check",
    ]);
    assert.equal(withToken.code, 0, withToken.stderr);
    assert.match(withToken.stdout, /admin 0\.0\.0\.0:0 \(bearer token\)/);
    await chmod(tokenFile, 0o644);
    const readable = await runPgrelay([
      ...upstream,
      "--admin",
      "0.0.0.0:0",
      "--admin-token-file",
      tokenFile,
      "--check",
    ]);
    assert.equal(readable.code, 2);
    assert.match(readable.stderr, /admin\.token_file: .*others can access it \(mode 0644\).*chmod 600/);
  });
});
