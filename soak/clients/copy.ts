/** COPY FROM STDIN and COPY TO STDOUT on one session, several rounds, every row counted. */
import type { RawClient } from "../../tests/support/raw_client.ts";
import { commandTag } from "../../tests/support/backend_frames.ts";
import type { LoadContext, LoopSpec } from "../load_loop.ts";
import { frame, openSession, simpleQuery } from "../wire.ts";

const ROUNDS = 5;
const IN_ROWS = 2000;
const OUT_ROWS = 5000;
const ROWS_PER_MESSAGE = 200;
const encoder = new TextEncoder();

export function copyLoop(ctx: LoadContext): LoopSpec {
  return {
    kind: "copy",
    pauseMs: 200,
    timeoutMs: 60_000,
    async op(scope, i) {
      const tls = i % 4 === 3;
      scope.label = tls ? "copy over TLS" : "copy";
      const { client } = await openSession(ctx, scope, { tls });
      await simpleQuery(client, "create temp table soak_copy(i int, t text)");
      for (let round = 0; round < ROUNDS; round++) {
        await copyIn(client);
        await copyOut(client);
        await simpleQuery(client, "truncate soak_copy");
      }
      client.terminate();
      await client.close();
      return ROUNDS * 2;
    },
  };
}

async function copyIn(client: RawClient): Promise<void> {
  client.query("copy soak_copy from stdin");
  const first = await client.readMessage(20_000);
  if (first.type !== "G") throw new Error(`COPY FROM STDIN answered '${first.type}', not CopyInResponse`);
  for (let row = 0; row < IN_ROWS; row += ROWS_PER_MESSAGE) {
    let text = "";
    for (let r = row; r < row + ROWS_PER_MESSAGE; r++) text += `${r}\tsoak row ${r} ${"p".repeat(r % 50)}\n`;
    client.sendBytes(frame("d", encoder.encode(text)));
  }
  client.sendBytes(frame("c"));
  const messages = await client.readUntilReady(20_000);
  const tag = messages.find((m) => m.type === "C");
  if (messages.some((m) => m.type === "E") || tag === undefined || commandTag(tag.body) !== `COPY ${IN_ROWS}`) {
    throw new Error(`COPY FROM STDIN ended with ${messages.map((m) => m.type).join("")} ${tag ? commandTag(tag.body) : ""}`);
  }
}

async function copyOut(client: RawClient): Promise<void> {
  client.query(`copy (select i, repeat('y', 100) from generate_series(1, ${OUT_ROWS}) i) to stdout`);
  const messages = await client.readUntilReady(20_000);
  const rows = messages.filter((m) => m.type === "d").length;
  const tag = messages.find((m) => m.type === "C");
  if (rows !== OUT_ROWS || tag === undefined || commandTag(tag.body) !== `COPY ${OUT_ROWS}`) {
    throw new Error(`COPY TO STDOUT gave ${rows} rows, tag ${tag ? commandTag(tag.body) : "none"}, ${messages.length} messages`);
  }
}
