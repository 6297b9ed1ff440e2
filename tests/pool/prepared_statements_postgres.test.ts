/**
 * Plays one client's frames through PreparedStatements onto two real PostgreSQL 15 server connections in
 * turn (each step a transaction that may land on the other server, as in transaction pooling), and checks the
 * client gets exactly what one direct PostgreSQL session answers to the same frames.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ServerStatements } from "../../src/pool/server_statements.ts";
import { StatementRegistry } from "../../src/pool/statement_registry.ts";
import { encodeFrame } from "../../src/protocol/encode_frame.ts";
import { type BackendMessage, errorFields, parseBackendFrames } from "../support/backend_frames.ts";
import { concatBytes } from "../support/bytes.ts";
import * as fe from "../support/frontend_frames.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { RawClient } from "../support/raw_client.ts";
import { PreparedRelay } from "./prepared_relay.ts";

interface Step {
  /** The pooled client's server for this transaction. */
  on: "A" | "B";
  frames: Uint8Array[];
}

const STEPS: Step[] = [
  { on: "A", frames: [fe.parse("s1", "SELECT $1::int + 1", [23]), fe.parse("", "SELECT $1::text || '!'", [25]), fe.sync()] },
  // the unnamed statement and s1 after a Sync, on a server that has neither (PgBouncer #1288)
  { on: "B", frames: [fe.bind("", "", ["hi"]), fe.execute(""), fe.bind("", "s1", ["41"]), fe.execute(""), fe.sync()] },
  // a duplicate name: 42P05, the rest skipped to Sync, the session goes on (PgBouncer #1118)
  { on: "A", frames: [fe.describe("S", "s1"), fe.parse("s1", "SELECT 2"), fe.bind("", "s1", ["1"]), fe.execute(""), fe.sync()] },
  // the same text under another name, on a server that has it: ParseComplete from pgrelay
  { on: "B", frames: [fe.parse("s2", "SELECT $1::int + 1", [23]), fe.describe("S", "s2"), fe.bind("", "s2", ["1"]), fe.execute(""), fe.sync()] },
  { on: "A", frames: [fe.parse("s6", "SELECT 'six'::text AS six"), fe.sync()] },
  // Describe of a statement the server lacks (Supavisor #1174)
  { on: "B", frames: [fe.describe("S", "s6"), fe.sync()] },
  // Close answered by pgrelay, then the name reused for another text
  { on: "A", frames: [fe.close("S", "s1"), fe.parse("s1", "SELECT 'new'::text"), fe.bind("", "s1", []), fe.execute(""), fe.sync()] },
  { on: "B", frames: [fe.query("DEALLOCATE s2")] },
  { on: "B", frames: [fe.bind("", "s2", []), fe.execute(""), fe.sync()] },
  // a pipelined DEALLOCATE ALL keeps what comes after it (PgBouncer #1535)
  { on: "A", frames: [fe.query("DEALLOCATE ALL"), fe.parse("s3", "SELECT 3"), fe.sync(), fe.bind("", "s3", []), fe.execute(""), fe.sync()] },
  { on: "B", frames: [fe.bind("", "s3", []), fe.execute(""), fe.sync(), fe.bind("", "s1", []), fe.execute(""), fe.sync()] },
  // a failed transaction: a Parse of a statement the server has, a duplicate name
  {
    on: "A",
    frames: [
      fe.query("BEGIN"),
      fe.query("SELECT 1/0"),
      fe.parse("s7", "SELECT 3"),
      fe.sync(),
      fe.parse("s3", "SELECT 3"),
      fe.sync(),
      fe.query("DEALLOCATE s3"),
      fe.query("ROLLBACK"),
    ],
  },
  { on: "B", frames: [fe.bind("", "s3", []), fe.execute(""), fe.sync(), fe.bind("", "s7", []), fe.sync()] },
  // a Parse the server fails maps nothing
  { on: "B", frames: [fe.parse("s5", "SELEC 5"), fe.sync(), fe.parse("s5", "SELECT 5"), fe.bind("", "s5", []), fe.execute(""), fe.sync()] },
  // a simple Query drops the unnamed statement, also for the next server
  { on: "A", frames: [fe.parse("", "SELECT 'u2'"), fe.sync(), fe.query("SELECT 1")] },
  { on: "B", frames: [fe.bind("", "", []), fe.execute(""), fe.sync()] },
  // portals: partial fetches
  { on: "A", frames: [fe.parse("p1", "SELECT generate_series(1, 3) AS n"), fe.bind("c", "p1", []), fe.execute("c", 2), fe.execute("c", 0), fe.sync()] },
  { on: "B", frames: [fe.bind("", "p1", []), fe.describe("P", ""), fe.execute(""), fe.sync()] },
  { on: "B", frames: [fe.query("DISCARD ALL"), fe.bind("", "p1", []), fe.sync()] },
  { on: "A", frames: [fe.parse("p1", "SELECT 'again'"), fe.bind("", "p1", []), fe.execute(""), fe.sync()] },
];

const frameOf = (m: BackendMessage) => encodeFrame(m.type.charCodeAt(0), m.body);

/** Frames as comparable text: ErrorResponse reduced to its S, V, C, M fields (pgrelay's own carry no F, L, R). */
function normalize(bytes: Uint8Array): string[] {
  return parseBackendFrames(bytes).map((m) => {
    if (m.type !== "E") return `${m.type} ${[...m.body].join(",")}`;
    const f = errorFields(m.body);
    return `E ${f["S"]}|${f["V"]}|${f["C"]}|${f["M"]}`;
  });
}

async function login(pg: PostgresCluster): Promise<RawClient> {
  const client = await RawClient.connect(pg.host, pg.port);
  client.startup({ user: pg.users.trust.user, database: "postgres" });
  await client.authenticate(pg.users.trust.password);
  return client;
}

describe("PreparedStatements against PostgreSQL 15", () => {
  let pg: PostgresCluster;
  const clients: RawClient[] = [];

  before(async () => {
    pg = await startPostgres();
  });

  after(async () => {
    for (const client of clients) await client.close();
    await pg?.stop();
  });

  it("a client moved between two server connections gets what one direct session answers", async () => {
    const [direct, a, b] = [await login(pg), await login(pg), await login(pg)];
    clients.push(direct, a, b);
    const registry = new StatementRegistry();
    // Two statements per server, so evictions happen too.
    const servers = { A: { conn: a, statements: new ServerStatements(2) }, B: { conn: b, statements: new ServerStatements(2) } };
    const relay = new PreparedRelay(registry);
    for (const [i, step] of STEPS.entries()) {
      const input = concatBytes(step.frames);
      // Direct: one ReadyForQuery per Sync and Query.
      direct.sendBytes(input);
      const readies = step.frames.filter((f) => f[0] === 0x53 || f[0] === 0x51).length;
      const expected: Uint8Array[] = [];
      for (let seen = 0; seen < readies;) {
        const m = await direct.readMessage();
        expected.push(frameOf(m));
        if (m.type === "Z") seen++;
      }
      // Pooled: this transaction's server.
      const server = servers[step.on];
      relay.attach(server.statements);
      const got: Uint8Array[] = [];
      let sent = relay.client(input);
      for (;;) {
        if (sent.length > 0) server.conn.sendBytes(sent);
        sent = new Uint8Array(0);
        got.push(relay.takeClient());
        if (relay.queue.outstanding === 0) {
          assert.equal(relay.waiting, false, "waiting with nothing outstanding");
          break;
        }
        got.push(relay.server(frameOf(await server.conn.readMessage())));
        if (relay.waiting) sent = relay.client();
      }
      assert.deepEqual(normalize(concatBytes(got)), normalize(concatBytes(expected)), `step ${i} on ${step.on}`);
      assert.equal(relay.queue.releasable, true, `step ${i}: the server can go back to the pool`);
      relay.detach();
    }
    assert.ok(registry.hits > 0 && registry.misses > 0 && registry.evictions > 0, `hits ${registry.hits}, misses ${registry.misses}, evictions ${registry.evictions}`);
    for (const [name, server] of Object.entries(servers)) {
      // What pgrelay believes each server holds is what it holds.
      server.conn.sendBytes(fe.query("SELECT name FROM pg_prepared_statements WHERE NOT from_sql ORDER BY name"));
      const rows = (await server.conn.readUntilReady()).filter((m) => m.type === "D").map((m) => new TextDecoder().decode(m.body.subarray(6)));
      const believed = server.statements.ids().map((id) => `pgrelay_${id}`).sort();
      assert.deepEqual(rows, believed, `server ${name}`);
    }
  });
});
