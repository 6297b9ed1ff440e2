/**
 * RequestQueue against a real PostgreSQL 15 server: for each flow (COPY in and out by simple and extended
 * protocol, CopyFail, errors in pipelines, FunctionCall, an explicit transaction), the queue must say
 * "releasable" exactly at the server's last ReadyForQuery, never before, and the server must owe nothing more.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RequestQueue, VERDICT } from "../../src/pool/request_queue.ts";
import { encodeFrame } from "../../src/protocol/encode_frame.ts";
import * as fe from "../support/frontend_frames.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { RawClient } from "../support/raw_client.ts";

const text = new TextEncoder();
const c = (letter: string) => letter.charCodeAt(0);
const copyData = (s: string) => encodeFrame(c("d"), text.encode(s));
const copyDone = () => encodeFrame(c("c"));
const copyFail = (why: string) => encodeFrame(c("f"), text.encode(`${why}\0`));

/** FunctionCall with text arguments and a text result. */
function functionCall(oid: number, args: string[]): Uint8Array {
  const parts: number[] = [];
  const int16 = (n: number) => parts.push((n >> 8) & 255, n & 255);
  const int32 = (n: number) => parts.push((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
  int32(oid);
  int16(1);
  int16(0); // all arguments in text
  int16(args.length);
  for (const arg of args) {
    const bytes = text.encode(arg);
    int32(bytes.length);
    parts.push(...bytes);
  }
  int16(0); // text result
  return encodeFrame(c("F"), Uint8Array.from(parts));
}

interface Flow {
  name: string;
  frames: Uint8Array[];
  /** Sent once the server's CopyInResponse has gone through the queue. */
  copy?: Uint8Array[];
  /** ReadyForQuery frames the server sends for this flow. */
  readies: number;
}

describe("RequestQueue against PostgreSQL 15", () => {
  let pg: PostgresCluster;
  let client: RawClient;

  before(async () => {
    pg = await startPostgres();
    client = await RawClient.connect(pg.host, pg.port);
    client.startup({ user: pg.users.trust.user, database: "postgres" });
    await client.authenticate(pg.users.trust.password);
  });

  after(async () => {
    await client?.close();
    await pg?.stop();
  });

  it("is releasable exactly at the last ReadyForQuery of each flow", async () => {
    client.query("SELECT 'int4pl'::regproc::oid");
    const oidRow = (await client.readUntilReady()).find((m) => m.type === "D")!;
    const int4pl = Number(new TextDecoder().decode(oidRow.body.subarray(6)));
    const flows: Flow[] = [
      { name: "temp table", frames: [fe.query("CREATE TEMP TABLE t (a int)")], readies: 1 },
      { name: "COPY FROM STDIN by Query", frames: [fe.query("COPY t FROM STDIN")], copy: [copyData("1\n"), copyData("2\n"), copyDone()], readies: 1 },
      {
        name: "COPY FROM STDIN by Execute, libpq style (Sync pipelined, Sync after CopyDone)",
        frames: [fe.parse("", "COPY t FROM STDIN"), fe.bind("", "", []), fe.describe("P", ""), fe.execute(""), fe.sync()],
        copy: [copyData("3\n"), copyDone(), fe.sync()],
        readies: 1,
      },
      {
        name: "COPY FROM STDIN by Execute, failed by CopyFail",
        frames: [fe.parse("", "COPY t FROM STDIN"), fe.bind("", "", []), fe.execute(""), fe.sync()],
        copy: [copyData("4\n"), copyFail("changed my mind"), fe.sync()],
        readies: 1,
      },
      { name: "COPY FROM STDIN with bad data", frames: [fe.query("COPY t FROM STDIN")], copy: [copyData("x\n"), copyDone()], readies: 1 },
      { name: "COPY TO STDOUT by Execute", frames: [fe.parse("", "COPY t TO STDOUT"), fe.bind("", "", []), fe.execute(""), fe.sync()], readies: 1 },
      { name: "COPY TO STDOUT in a multi-statement Query", frames: [fe.query("COPY t TO STDOUT; SELECT count(*) FROM t")], readies: 1 },
      {
        name: "an error in a pipeline skips to its Sync, the next batch runs",
        frames: [fe.parse("", "SELECT 1/0"), fe.bind("", "", []), fe.execute(""), fe.sync(), fe.parse("", "SELECT 2"), fe.bind("", "", []), fe.execute(""), fe.sync()],
        readies: 2,
      },
      {
        name: "an error before the client sent its Sync",
        frames: [fe.parse("", "SELEC 1"), fe.bind("", "", []), fe.flush()],
        copy: [fe.execute(""), fe.query("SELECT 'ignored'"), fe.sync()], // sent after the ErrorResponse
        readies: 1,
      },
      { name: "FunctionCall", frames: [functionCall(int4pl, ["2", "3"])], readies: 1 },
      { name: "many Syncs outstanding", frames: Array.from({ length: 50 }, (_, i) => [fe.parse("", `SELECT ${i}`), fe.bind("", "", []), fe.execute(""), fe.sync()]).flat(), readies: 50 },
      { name: "an explicit transaction", frames: [fe.query("BEGIN"), fe.query("INSERT INTO t VALUES (9)"), fe.query("COMMIT")], readies: 3 },
      { name: "portal suspended and resumed", frames: [fe.parse("", "SELECT generate_series(1, 5)"), fe.bind("", "", []), fe.execute("", 2), fe.execute("", 2), fe.execute("", 0), fe.sync()], readies: 1 },
    ];
    for (const flow of flows) {
      const queue = new RequestQueue();
      const send = (frames: Uint8Array[]) => {
        for (const frame of frames) queue.frontend(frame[0]!);
        for (const frame of frames) client.sendBytes(frame);
      };
      send(flow.frames);
      let readies = 0;
      let sentLater = false;
      const seen: string[] = [];
      while (readies < flow.readies) {
        const message = await client.readMessage();
        seen.push(message.type);
        assert.equal(queue.backend(message.type.charCodeAt(0), message.body), VERDICT.FORWARD);
        if (message.type === "Z") readies++;
        if (readies < flow.readies) assert.equal(queue.releasable, false, `${flow.name}: releasable too early after ${seen.join("")}`);
        if (flow.copy && !sentLater && (message.type === "G" || message.type === "E")) {
          sentLater = true;
          send(flow.copy);
        }
      }
      assert.equal(queue.outstanding, 0, `${flow.name}: ${seen.join("")}`);
      assert.equal(queue.releasable, true, `${flow.name}: ${seen.join("")}`);
      // Nothing more is owed: the next reply is the sentinel's.
      client.query("SELECT 'sentinel'");
      const next = await client.readUntilReady();
      assert.equal(next.map((m) => m.type).join(""), "TDCZ", `${flow.name}: stray replies after ${seen.join("")}`);
    }
  });
});
