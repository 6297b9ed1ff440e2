/**
 * Hostile and broken clients: each gets a PostgreSQL-format error or a close, and none of them disturbs a
 * healthy session running beside them.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { Proxy } from "../../src/core/proxy.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { errorFields, frontend, parseBackendFrames, RawClient } from "../support/raw_client.ts";

const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

describe("malformed input", () => {
  let cluster: PostgresCluster;
  let proxy: Proxy;
  let healthy: pg.Client;

  /** Sends bytes on a fresh connection and returns the error the proxy answers with before closing. */
  async function errorFor(bytes: Uint8Array, closeAfterSend = false): Promise<Record<string, string> | undefined> {
    const client = await RawClient.connect("127.0.0.1", proxy.address.port);
    client.sendBytes(bytes);
    if (closeAfterSend) {
      await client.close();
      return undefined;
    }
    const frames = parseBackendFrames(await client.readRawUntilClose(5000));
    const error = frames.find((f) => f.type === "E");
    return error ? errorFields(error.body) : undefined;
  }

  async function healthyStillWorks(): Promise<void> {
    const result = await healthy.query("select count(*)::int as n from generate_series(1, 1000)");
    assert.equal(result.rows[0].n, 1000);
  }

  before(async () => {
    cluster = await startPostgres();
    proxy = await startTestProxy(cluster, { startupTimeoutMs: 1000, maxMessageBytes: 1 << 20 });
    healthy = new pg.Client({ host: "127.0.0.1", port: proxy.address.port, ...cluster.users.scram, database: "postgres" });
    await healthy.connect();
  });
  after(async () => {
    await healthy?.end();
    await proxy?.close();
    await cluster?.stop();
  });

  it("garbage bytes (an HTTP request) get FATAL 08P01", async () => {
    const fields = await errorFor(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.equal(fields?.S, "FATAL");
    assert.equal(fields?.C, "08P01");
    assert.match(fields?.M ?? "", /invalid length of startup packet: 1195725856 bytes/);
    await healthyStillWorks();
  });

  it("a startup length of 2^31-1 gets 08P01 without buffering it", async () => {
    const fields = await errorFor(new Uint8Array([0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]));
    assert.equal(fields?.C, "08P01");
    assert.match(fields?.M ?? "", /2147483647/);
    await healthyStillWorks();
  });

  it("a 20000-byte startup packet gets 08P01", async () => {
    const big = new Uint8Array(20000);
    big.set([...u32(20000), ...u32(196608)]);
    big.set(new TextEncoder().encode("user\0" + "u".repeat(19000)), 8);
    const fields = await errorFor(big);
    assert.equal(fields?.C, "08P01");
    assert.match(fields?.M ?? "", /invalid length of startup packet: 20000 bytes \(allowed 8 to 10000\)/);
    await healthyStillWorks();
  });

  it("a startup packet with a broken parameter list gets 08P01", async () => {
    const body = new TextEncoder().encode("user\0alice");
    const fields = await errorFor(new Uint8Array([...u32(8 + body.length), ...u32(196608), ...body]));
    assert.equal(fields?.C, "08P01");
    assert.match(fields?.M ?? "", /expected terminator as last byte/);
  });

  it("protocol 2.0 gets 0A000", async () => {
    const fields = await errorFor(new Uint8Array([...u32(8), ...u32(2 << 16)]));
    assert.equal(fields?.C, "0A000");
    await healthyStillWorks();
  });

  it("a truncated startup followed by a disconnect leaves no session behind", async () => {
    await errorFor(frontend.startupMessage({ user: "x" }).subarray(0, 7), true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(proxy.sessions.length, 1, "only the healthy session remains");
    await healthyStillWorks();
  });

  it("a connection that sends nothing is closed after startup_timeout with FATAL 57014", async () => {
    const started = Date.now();
    const client = await RawClient.connect("127.0.0.1", proxy.address.port);
    const frames = parseBackendFrames(await client.readRawUntilClose(5000));
    const elapsed = Date.now() - started;
    assert.equal(errorFields(frames[0]!.body).C, "57014");
    assert.match(errorFields(frames[0]!.body).M ?? "", /not ready within 1000 ms/);
    assert.ok(elapsed >= 900 && elapsed < 4000, `closed after ${elapsed} ms`);
    await healthyStillWorks();
  });

  it("after authentication, a message of length 2^31-1 gets 08P01 and the server backend goes away", async () => {
    const client = await RawClient.connect("127.0.0.1", proxy.address.port);
    client.startup({ user: cluster.users.scram.user, database: "postgres", application_name: "hostile" });
    await client.authenticate(cluster.users.scram.password);
    client.sendBytes(new Uint8Array([0x51, 0x7f, 0xff, 0xff, 0xff, 0x73, 0x65]));
    const frames = parseBackendFrames(await client.readRawUntilClose(5000));
    const error = frames.find((f) => f.type === "E");
    assert.equal(errorFields(error!.body).C, "08P01");
    assert.match(errorFields(error!.body).M ?? "", /invalid message from client: type 'Q' with length 2147483647/);
    let backends = 1;
    for (let i = 0; i < 50 && backends > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      backends = (await healthy.query("select count(*)::int as n from pg_stat_activity where application_name = 'hostile'")).rows[0].n;
    }
    assert.equal(backends, 0);
  });

  it("a client that vanishes mid-COPY IN does not disturb others", async () => {
    await healthy.query("create table if not exists copy_target(a int)");
    const client = await RawClient.connect("127.0.0.1", proxy.address.port);
    client.startup({ user: cluster.users.scram.user, database: "postgres" });
    await client.authenticate(cluster.users.scram.password);
    client.query("copy copy_target from stdin");
    await client.readMessage();
    const row = new TextEncoder().encode("1\n");
    client.sendBytes(new Uint8Array([0x64, ...u32(4 + row.length), ...row]));
    await client.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const rows = (await healthy.query("select count(*)::int as n from copy_target")).rows[0].n;
    assert.equal(rows, 0, "the aborted COPY committed nothing");
    await healthyStillWorks();
  });

  it("many broken connections at once leave the proxy serving", async () => {
    await Promise.all(Array.from({ length: 30 }, (_, i) =>
      new Promise<void>((resolve) => {
        const socket = connect(proxy.address.port, "127.0.0.1", () => {
          socket.write(new Uint8Array([i, 0xff, 0, 1, 2, 3, 4, 5, 6, 7]));
          socket.destroy();
          resolve();
        });
        socket.on("error", () => resolve());
      })));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(proxy.sessions.length, 1);
    await healthyStillWorks();
  });
});
