/**
 * Captures real traffic for the fuzz seed corpus: a throw-away PostgreSQL (tests/support), a recording TCP
 * relay in front of it, and psql and pgbench sessions through the relay (SCRAM login, simple, extended and
 * prepared protocols, COPY, errors). Writes tests/fuzz/seeds/<target>/captured-*.bin (the startup packets,
 * the first 8 KiB of each direction, SCRAM messages and query texts). Run once: `bun scripts/capture_fuzz_seeds.ts`.
 */
import { createConnection, createServer, type Socket } from "node:net";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { startPostgres } from "../tests/support/postgres.ts";
import { runPgbench, runPsql } from "../tests/support/clients.ts";
import { SEED_DIR } from "../tests/fuzz/engine.ts";
import { concat } from "../tests/fuzz/mutate.ts";
import { packMessages } from "../tests/fuzz/targets/scram_fixture.ts";
import { encodeSqlInput } from "../tests/fuzz/targets/redact.ts";

const STREAM_BYTES = 8192;

interface Recording {
  fromClient: Uint8Array[];
  fromServer: Uint8Array[];
}

const cluster = await startPostgres();
const recordings: Recording[] = [];
const relay = createServer((client: Socket) => {
  const recording: Recording = { fromClient: [], fromServer: [] };
  recordings.push(recording);
  const server = createConnection({ host: cluster.host, port: cluster.port });
  client.on("data", (chunk) => {
    recording.fromClient.push(new Uint8Array(chunk));
    server.write(chunk);
  });
  server.on("data", (chunk) => {
    recording.fromServer.push(new Uint8Array(chunk));
    client.write(chunk);
  });
  client.on("close", () => server.end());
  server.on("close", () => client.end());
  client.on("error", () => server.destroy());
  server.on("error", () => client.destroy());
});
await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
const port = (relay.address() as { port: number }).port;

try {
  const direct = {
    host: cluster.host,
    port: cluster.port,
    ...cluster.users.scram,
    database: "app",
    env: { PGSSLMODE: "disable" },
  };
  const login = { ...direct, port };
  const check = (what: string, result: { code: number | null; stderr: string }) => {
    if (result.code !== 0) throw new Error(`${what}: ${result.stderr}`);
  };
  check("pgbench -i", await runPgbench(["-i", "-s", "1", "-q"], direct));
  check(
    "psql",
    await runPsql([
      "-c",
      "select 1",
      "-c",
      "select 'it''s', E'a\\'b', $$x$$, 42, 1.5e3 as \"Qu\"\"oted\"",
      "-c",
      "\\d pgbench_accounts",
    ], login),
  );
  await runPsql(["-c", "select 1/0"], login); // an ErrorResponse
  check(
    "psql copy",
    await runPsql(
      ["-c", "\\copy (select aid, abalance from pgbench_accounts where aid < 20) to stdout"],
      login,
    ),
  );
  check(
    "psql copy in",
    await runPsql(["-c", "create temp table t (a int, b text)", "-c", "\\copy t from stdin"], {
      ...login,
      input: "1\tone\n2\ttwo\n\\.\n",
    }),
  );
  for (const mode of ["simple", "extended", "prepared"]) {
    check(`pgbench -M ${mode}`, await runPgbench(["-n", "-t", "3", "-M", mode], login));
  }
} finally {
  relay.close();
  await cluster.stop();
}

const seeds: Record<string, Uint8Array[]> = {};
const add = (target: string, item: Uint8Array) => (seeds[target] ??= []).push(item);
const int32 = (bytes: Uint8Array, at: number) => new DataView(bytes.buffer, bytes.byteOffset).getInt32(at);
const decoder = new TextDecoder();

/** The typed frames of a stream: [type, body]. */
function frames(stream: Uint8Array): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  let at = 0;
  while (at + 5 <= stream.length) {
    const length = int32(stream, at + 1);
    out.push([String.fromCharCode(stream[at]!), stream.subarray(at + 5, at + 1 + length)]);
    at += 1 + length;
  }
  return out;
}

for (const { fromClient, fromServer } of recordings) {
  const client = concat(...fromClient);
  const server = concat(...fromServer);
  if (client.length < 8) continue;
  const startupLength = int32(client, 0);
  add("startup", client.subarray(0, startupLength));
  const clientFrames = client.subarray(startupLength);
  add("frame_scanner_frontend", clientFrames.subarray(0, STREAM_BYTES));
  add("frame_scanner_backend", server.subarray(0, STREAM_BYTES));
  const sasl = frames(clientFrames).filter(([type]) => type === "p").map(([, body]) => body);
  const serverAuth = frames(server).filter(([type, body]) =>
    type === "R" && body.length > 4 && [11, 12].includes(int32(body, 0))
  );
  if (sasl.length === 2) {
    const initial = sasl[0]!;
    const mechanismEnd = initial.indexOf(0);
    add("scram_server", packMessages(0, initial.subarray(mechanismEnd + 5), sasl[1]!));
  }
  if (serverAuth.length === 2) {
    add(
      "scram_client_with_key",
      packMessages(0, serverAuth[0]![1].subarray(4), serverAuth[1]![1].subarray(4)),
    );
  }
  for (const [type, body] of frames(clientFrames)) {
    if (type === "Q") {
      add("redact_mutate", encodeSqlInput(decoder.decode(body.subarray(0, body.indexOf(0))), true));
    }
    if (type === "P") {
      const nameEnd = body.indexOf(0);
      add(
        "redact_mutate",
        encodeSqlInput(decoder.decode(body.subarray(nameEnd + 1, body.indexOf(0, nameEnd + 1))), true),
      );
    }
  }
}

for (const [target, items] of Object.entries(seeds)) {
  const unique = [...new Map(items.map((item) => [Array.from(item).join(","), item])).values()].slice(0, 12);
  const dir = join(SEED_DIR, target);
  mkdirSync(dir, { recursive: true });
  for (const file of readdirSync(dir)) if (file.startsWith("captured-")) rmSync(join(dir, file));
  unique.forEach((item, i) => writeFileSync(join(dir, `captured-${String(i).padStart(2, "0")}.bin`), item));
  console.log(`${target}: ${unique.length} captured seeds (${recordings.length} connections recorded)`);
}
process.exit(0);
