/**
 * When an upstream dies, or a client does, with real PostgreSQL: the client hears FATAL 08006 from pgrelay
 * when the server vanished without a word (immediate shutdown, a killed or reset TCP relay between them),
 * only the server's own FATAL when it sent one (pg_terminate_backend), and a backend whose client vanished
 * mid-query or mid-COPY stops at once instead of working for nobody.
 */
import assert from "node:assert/strict";
import { createServer, type Server, Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { LogFields, Logger } from "../../src/core/logger.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import {
  type BackendMessage,
  dataRowValues,
  errorFields,
  parseBackendFrames,
  RawClient,
} from "../support/raw_client.ts";
import { waitFor } from "../support/wait.ts";

type Line = LogFields & { event: string; level: string };

function recordingLogger(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  return { lines, log: (level, event, fields = {}) => lines.push({ ...fields, event, level }) };
}

/** A TCP forwarder on port 0 that a test can kill: every accepted socket and its upstream twin are kept. */
async function tcpRelay(
  target: number,
): Promise<{ port: number; kill(how: "close" | "reset"): void; close(): void }> {
  const facingPgrelay: Socket[] = [];
  const facingServer: Socket[] = [];
  const server: Server = createServer((inbound) => {
    const outbound = new Socket();
    outbound.connect(target, "127.0.0.1");
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const drop = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("error", drop);
    outbound.on("error", drop);
    facingPgrelay.push(inbound);
    facingServer.push(outbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    kill(how) {
      for (const socket of facingPgrelay) {
        const reset = (socket as Socket & { resetAndDestroy?: () => void }).resetAndDestroy;
        if (how === "reset" && reset) reset.call(socket);
        else socket.destroy();
      }
      for (const socket of facingServer) socket.destroy();
    },
    close: () => server.close(),
  };
}

const copyData = (text: string) => {
  const bytes = new TextEncoder().encode(text);
  const frame = new Uint8Array(5 + bytes.length);
  frame[0] = "d".charCodeAt(0);
  new DataView(frame.buffer).setInt32(1, 4 + bytes.length);
  frame.set(bytes, 5);
  return frame;
};

const SESSION_LOST = /^pgrelay lost the connection to the database server \(session ([0-9a-f]{6}-\d+)\)$/;
const errorsIn = (frames: BackendMessage[]) =>
  frames.filter((f) => f.type === "E").map((f) => errorFields(f.body));

describe("when an upstream dies", () => {
  let cluster: PostgresCluster;
  let proxy: Proxy;
  const logger = recordingLogger();
  const { user, password } = { user: "scram_user", password: "scram-pass-1" };

  /** A RawClient logged in through `port`. */
  const loggedIn = async (port: number) => {
    const client = await RawClient.connect("127.0.0.1", port);
    client.startup({ user, database: "postgres" });
    await client.authenticate(password);
    return client;
  };
  const backendPid = async (client: RawClient) => {
    client.query("select pg_backend_pid()");
    const row = (await client.readUntilReady()).find((m) => m.type === "D")!;
    return Number(dataRowValues(row.body)[0]);
  };
  /** Runs SQL straight on the server as the superuser. */
  const direct = async (sql: string, values: unknown[] = []) => {
    const client = new pg.Client({
      host: cluster.host,
      port: cluster.port,
      ...cluster.users.superuser,
      database: "postgres",
    });
    await client.connect();
    try {
      return (await client.query(sql, values)).rows;
    } finally {
      await client.end();
    }
  };
  const backendGone = (pid: number) => async () =>
    (await direct("select count(*)::int as n from pg_stat_activity where pid = $1", [pid]))[0].n === 0;

  before(async () => {
    cluster = await startPostgres();
    proxy = await startTestProxy(cluster, { logger });
  });
  after(async () => {
    await proxy?.close();
    await cluster?.stop();
  });

  it("pg_ctl stop -m immediate: the client sees the server's WARNING, then pgrelay's FATAL 08006 naming the session", async () => {
    const raw = await loggedIn(proxy.address.port);
    const viaPg = new pg.Client({
      host: "127.0.0.1",
      port: proxy.address.port,
      user,
      password,
      database: "postgres",
    });
    const notices: Array<{ code?: string; severity?: string }> = [];
    const errors: Array<pg.DatabaseError> = [];
    viaPg.on("notice", (notice: { code?: string; severity?: string }) => notices.push(notice));
    viaPg.on("error", (error: Error) => errors.push(error as pg.DatabaseError));
    await viaPg.connect();
    try {
      await cluster.stopOnly("immediate");
      const frames = parseBackendFrames(await raw.readRawUntilClose());
      // PostgreSQL sends its WARNING best effort (a loaded machine can kill the backend first): one FATAL, always last.
      const types = frames.map((f) => f.type).join("");
      assert.ok(types === "NE" || types === "E", `the server's WARNING (maybe), then one FATAL: got ${types}`);
      if (types === "NE") {
        const warning = errorFields(frames[0]!.body);
        assert.equal(warning.V, "WARNING");
        assert.equal(warning.C, "57P01");
      }
      const fatal = errorFields(frames[frames.length - 1]!.body);
      assert.equal(fatal.S, "FATAL");
      assert.equal(fatal.V, "FATAL");
      assert.equal(fatal.C, "08006");
      const session = SESSION_LOST.exec(fatal.M ?? "")?.[1];
      assert.ok(session, fatal.M);
      assert.equal(fatal.H, "The administrator can find the cause in pgrelay's log under this session id.");
      assert.ok(
        logger.lines.some((l) => l.event === "server_lost" && l.session === session && l.level === "warn"),
      );

      await waitFor(() => errors.length > 0, "npm pg's error event");
      assert.equal(errors[0]!.code, "08006");
      assert.equal(errors[0]!.severity, "FATAL");
      assert.match(errors[0]!.message, SESSION_LOST);
      // The server sends its WARNING only on a best-effort basis (its backend may die first): when it came, it is 57P01.
      assert.deepEqual(notices.filter((n) => n.code !== "57P01"), [], JSON.stringify(notices));
      // npm pg adds its own "Connection terminated unexpectedly" on the close; only one came from the wire.
      assert.deepEqual(
        errors.filter((e) => e.code !== undefined).map((e) => e.code),
        ["08006"],
        errors.map(String).join("; "),
      );
    } finally {
      await viaPg.end().catch(() => {});
      await cluster.start();
    }
  });

  it("pg_terminate_backend: the client sees the server's FATAL 57P01 exactly once, nothing of pgrelay's", async () => {
    const raw = await loggedIn(proxy.address.port);
    const pid = await backendPid(raw);
    const lostBefore = logger.lines.filter((l) => l.event === "server_lost").length;
    assert.deepEqual(await direct("select pg_terminate_backend($1) as ok", [pid]), [{ ok: true }]);
    const frames = parseBackendFrames(await raw.readRawUntilClose());
    const errors = errorsIn(frames);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.equal(errors[0]!.C, "57P01");
    assert.equal(errors[0]!.V, "FATAL");
    assert.equal(logger.lines.filter((l) => l.event === "server_lost").length, lostBefore);
  });

  for (const how of ["close", "reset"] as const) {
    it(`a TCP relay between pgrelay and PostgreSQL dies (${how}): FATAL 08006`, async () => {
      const relay = await tcpRelay(cluster.port);
      const relayed = await startTestProxy({ host: "127.0.0.1", port: relay.port }, { logger });
      try {
        const raw = await loggedIn(relayed.address.port);
        raw.query("select 1");
        await raw.readUntilReady();
        relay.kill(how);
        const errors = errorsIn(parseBackendFrames(await raw.readRawUntilClose()));
        assert.equal(errors.length, 1, JSON.stringify(errors));
        assert.equal(errors[0]!.C, "08006");
        assert.match(errors[0]!.M!, SESSION_LOST);
        const session = SESSION_LOST.exec(errors[0]!.M!)![1];
        const logged = String(
          logger.lines.find((l) => l.event === "server_lost" && l.session === session)?.error,
        );
        assert.match(logged, how === "reset" ? /reset/i : /closed the connection without an error message/);
      } finally {
        await relayed.close();
        relay.close();
      }
    });
  }

  it("a client that vanishes mid pg_sleep(60): its backend is gone within seconds", async () => {
    const raw = await loggedIn(proxy.address.port);
    const pid = await backendPid(raw);
    raw.query("select pg_sleep(60)");
    await waitFor(
      async () =>
        (await direct("select state from pg_stat_activity where pid = $1", [pid]))[0]?.state === "active",
      "the query to run",
    );
    await raw.close();
    await waitFor(backendGone(pid), `backend ${pid} to leave pg_stat_activity`, 10_000);
    assert.ok(logger.lines.some((l) => l.event === "client_vanished" && l.backend_pid === pid));
  });

  it("a client that vanishes mid COPY FROM STDIN: its backend is gone within seconds", async () => {
    await direct(
      `create table if not exists copy_target(a int, b text); grant all on copy_target to ${user}`,
    );
    const raw = await loggedIn(proxy.address.port);
    const pid = await backendPid(raw);
    raw.query("copy copy_target from stdin");
    assert.equal((await raw.readMessage()).type, "G", "CopyInResponse");
    raw.sendBytes(copyData("1\tone\n2\ttwo\n"));
    await raw.close();
    await waitFor(backendGone(pid), `backend ${pid} to leave pg_stat_activity`, 10_000);
    assert.deepEqual(
      await direct("select count(*)::int as n from copy_target"),
      [{ n: 0 }],
      "the COPY did not commit",
    );
  });
});
