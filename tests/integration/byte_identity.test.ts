/**
 * The server-to-client byte stream of a fixed session through pgrelay equals the direct one, with only the
 * per-connection values masked: BackendKeyData and the SCRAM exchange (nonces, salt-bound proofs).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Proxy } from "../../src/core/proxy.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { parseBackendFrames, RawClient } from "../support/raw_client.ts";

const SASL_CONTINUE = 11;
const SASL_FINAL = 12;

/** Runs the fixed session and returns the whole byte stream the client received. */
async function recordSession(host: string, port: number, user: string, password: string): Promise<Uint8Array> {
  const client = await RawClient.connect(host, port);
  client.startup({ user, database: "app", application_name: "identity" });
  await client.authenticate(password);
  client.query("select 1 as a, 'x'::text as b, null::int as c; select repeat('r', 70000) as long_row");
  await client.readUntilReady();
  client.parse("s1", "select $1::int * 2 as doubled, $2::text as t", [23, 25]);
  client.bind("", "s1", ["21", "ünïcode"]);
  client.describe("P", "");
  client.execute("", 0);
  client.bind("", "s1", [null, null]);
  client.execute("", 0);
  client.sync();
  await client.readUntilReady();
  client.query("select 1/0");
  await client.readUntilReady();
  client.query("begin; select broken_column from nowhere; commit");
  await client.readUntilReady();
  client.query("rollback");
  await client.readUntilReady();
  client.terminate();
  await client.readRawUntilClose();
  return client.received;
}

/** Frames as "type:hex" strings, with the per-connection values masked. */
function masked(stream: Uint8Array): string[] {
  return parseBackendFrames(stream).map(({ type, body }) => {
    if (type === "K") return "K:<backend key>";
    if (type === "R") {
      const code = new DataView(body.buffer, body.byteOffset, body.byteLength).getInt32(0);
      if (code === SASL_CONTINUE || code === SASL_FINAL) return `R:${code}:<scram ${body.length > 60 ? "long" : "short"}>`;
    }
    return `${type}:${Buffer.from(body).toString("hex")}`;
  });
}

describe("byte identity", () => {
  let cluster: PostgresCluster;
  let proxy: Proxy;

  before(async () => {
    cluster = await startPostgres();
    proxy = await startTestProxy(cluster);
  });
  after(async () => {
    await proxy?.close();
    await cluster?.stop();
  });

  it("the server->client stream through pgrelay equals the direct stream, frame by frame", async () => {
    const { user, password } = cluster.users.scram;
    const direct = await recordSession(cluster.host, cluster.port, user, password);
    const relayed = await recordSession("127.0.0.1", proxy.address.port, user, password);
    const a = masked(direct);
    const b = masked(relayed);
    assert.ok(a.length > 30, `the session has many frames (${a.length})`);
    assert.ok(a.some((f) => f.startsWith("E:")), "the session includes an ErrorResponse");
    assert.ok(a.some((f) => f.startsWith("R:11:")), "the session authenticated with SCRAM");
    assert.deepEqual(b, a);
    assert.equal(relayed.length, direct.length, "same number of bytes in total");
  });
});
