/**
 * Writes the fuzz seed corpus (tests/fuzz/seeds/<target>/*.bin), built with the test suite's frame
 * builders and the real SCRAM code, so every seed is a valid message of its kind that mutations then break.
 * Run once after changing a target's input format: `bun scripts/fuzz_seeds.ts`. (Captured traffic, when
 * present under tests/fuzz/seeds/, is kept: only the `built-*` files are rewritten.)
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as fe from "../tests/support/frontend_frames.ts";
import { SEED_DIR } from "../tests/fuzz/engine.ts";
import { concat } from "../tests/fuzz/mutate.ts";
import {
  CHANNEL_BINDING,
  CLIENT_NONCE,
  packMessages,
  scramMaterial,
  SERVER_NONCE,
} from "../tests/fuzz/targets/scram_fixture.ts";
import { encodeSqlInput } from "../tests/fuzz/targets/redact.ts";
import { SCRAM_SHA_256_PLUS, ScramServerExchange } from "../src/auth/scram_server.ts";
import { ScramClientWithKey } from "../src/auth/scram_client_with_key.ts";
import { encodeBase64 } from "../src/auth/base64.ts";
import { hmacSha256, xorBytes } from "../src/auth/scram_crypto.ts";

const encoder = new TextEncoder();

function frame(type: string, ...parts: (Uint8Array | string | number)[]): Uint8Array {
  const bytes = parts.map((part) =>
    typeof part === "string" ? encoder.encode(part) : typeof part === "number" ? int32(part) : part
  );
  const body = concat(...bytes);
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, body.length + 4);
  out.set(body, 5);
  return out;
}
const int32 = (n: number) => {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, n);
  return out;
};
const int16 = (n: number) => new Uint8Array([(n >> 8) & 0xff, n & 0xff]);
const z = (s: string) => `${s}\0`;

const seeds: Record<string, Uint8Array[]> = {};
const add = (target: string, ...items: Uint8Array[]) => (seeds[target] ??= []).push(...items);
const text = (s: string) => encoder.encode(s);

// The startup phase: what psql, pgbench and drivers send first.
const psqlStartup = fe.startupMessage({
  user: "alice",
  database: "app",
  application_name: "psql",
  client_encoding: "UTF8",
});
add(
  "startup",
  psqlStartup,
  fe.startupMessage({
    user: "bench",
    database: "pgbench",
    application_name: "pgbench",
    options: "-c statement_timeout=0",
  }),
  fe.startupMessage({ user: "repl", database: "replication", replication: "true" }),
  fe.startupMessage({ user: "a", database: "" }, 0x0003_0002),
  fe.sslRequest(),
  fe.gssEncRequest(),
  fe.cancelRequest(4242, 0x1234_5678),
  concat(fe.sslRequest(), psqlStartup),
  concat(psqlStartup, fe.query("select 1")),
);

// Client → server after the startup packet.
const simple = concat(
  fe.query("select 1"),
  fe.query("begin; update t set a = a + 1 where id = 7; commit"),
  fe.terminate(),
);
const extended = concat(
  fe.parse("s1", "select * from pgbench_accounts where aid = $1", [23]),
  fe.describe("S", "s1"),
  fe.bind("", "s1", ["42"]),
  fe.execute("", 0),
  fe.sync(),
  fe.bind("p1", "s1", [null]),
  fe.execute("p1", 10),
  fe.close("P", "p1"),
  fe.close("S", "s1"),
  fe.flush(),
  fe.sync(),
);
const copyIn = concat(
  fe.query("copy t from stdin"),
  frame("d", "1\tone\n2\ttwo\n"),
  frame("c"),
  frame("f", z("client gave up")),
);
const functionCall = frame("F", int32(764), int16(1), int16(0), int16(1), int32(4), int32(1), int16(0));
const sasl = concat(
  fe.saslInitialResponse("SCRAM-SHA-256", text(`n,,n=,r=${CLIENT_NONCE}`)),
  fe.saslResponse(text(`c=biws,r=${CLIENT_NONCE}${SERVER_NONCE},p=AAAA`)),
);
add(
  "frame_scanner_frontend",
  simple,
  extended,
  copyIn,
  functionCall,
  sasl,
  concat(extended, simple, functionCall),
);

// Server → client.
const login = concat(
  frame("R", int32(10), z("SCRAM-SHA-256-PLUS"), z("SCRAM-SHA-256"), "\0"),
  frame("R", int32(11), `r=${CLIENT_NONCE}${SERVER_NONCE},s=AQIDBAUGBwgJCgsMDQ4PEA==,i=4096`),
  frame("R", int32(12), "v=AAAA"),
  frame("R", int32(0)),
  frame("S", z("server_version"), z("15.8")),
  frame("S", z("standard_conforming_strings"), z("on")),
  frame("S", z("client_encoding"), z("UTF8")),
  frame("K", int32(4242), int32(0x1234_5678)),
  frame("Z", "I"),
);
const results = concat(
  frame("T", int16(1), z("?column?"), int32(0), int16(0), int32(23), int16(4), int32(-1), int16(0)),
  frame("D", int16(1), int32(1), "1"),
  frame("C", z("SELECT 1")),
  frame("Z", "T"),
  frame("E", z("SERROR"), z("VERROR"), z("C22012"), z("Mdivision by zero"), "\0"),
  frame("Z", "E"),
  frame("C", z("ROLLBACK")),
  frame("Z", "I"),
  frame("1"),
  frame("2"),
  frame("n"),
  frame("s"),
  frame("I"),
  frame("3"),
  frame("N", z("SNOTICE"), z("C00000"), z("Mhello"), "\0"),
  frame("A", int32(1), z("chan"), z("payload")),
  frame("S", z("standard_conforming_strings"), z("off")),
  frame(
    "E",
    z("SFATAL"),
    z("VFATAL"),
    z("C57P01"),
    z("Mterminating connection due to administrator command"),
    "\0",
  ),
);
const copyOut = concat(
  frame("H", "\0", int16(1), int16(0)),
  frame("d", "1\tone\n"),
  frame("c"),
  frame("C", z("COPY 1")),
  frame("Z", "I"),
);
add("frame_scanner_backend", login, results, copyOut, concat(login, results, copyOut));

// SCRAM: complete exchanges with the fixture's verifier and nonces.
const { keys, verifier } = await scramMaterial();
{
  const client = new ScramClientWithKey({ clientKey: keys.clientKey, verifier, nonce: CLIENT_NONCE });
  const server = new ScramServerExchange(verifier, {
    user: "fuzz",
    offerPlus: false,
    serverNonce: SERVER_NONCE,
  });
  const first = client.initialResponse().data;
  const initial = await server.handleInitial("SCRAM-SHA-256", first);
  if ("error" in initial) throw new Error(initial.error.message);
  const clientFinal = await client.handleContinue(initial.serverFirst);
  const final = await server.handleFinal(clientFinal);
  if ("error" in final) throw new Error(final.error.message);
  add(
    "scram_server",
    packMessages(0, first, clientFinal),
    packMessages(1, first, clientFinal),
    packMessages(2, first, clientFinal),
  );
  add(
    "scram_client_with_key",
    packMessages(0, initial.serverFirst, final.serverFinal),
    packMessages(0, initial.serverFirst, text("e=invalid-proof")),
  );
  add(
    "scram_client_with_password",
    packMessages(0, text(`r=%NONCE%${SERVER_NONCE},s=${encodeBase64(verifier.salt)},i=4`), final.serverFinal),
    packMessages(0, text(`r=%NONCE%x,s=c2FsdA==,i=1`), text("v=AAAA")),
  );
}
{
  // SCRAM-SHA-256-PLUS with tls-server-end-point binding, computed by hand (the clients do not bind).
  const gs2 = "p=tls-server-end-point,,";
  const bare = `n=,r=${CLIENT_NONCE}`;
  const serverFirst = `r=${CLIENT_NONCE}${SERVER_NONCE},s=${
    encodeBase64(verifier.salt)
  },i=${verifier.iterations}`;
  const withoutProof = `c=${
    encodeBase64(concat(text(gs2), CHANNEL_BINDING))
  },r=${CLIENT_NONCE}${SERVER_NONCE}`;
  const signature = await hmacSha256(verifier.storedKey, `${bare},${serverFirst},${withoutProof}`);
  const proof = encodeBase64(xorBytes(keys.clientKey, signature));
  add("scram_server", packMessages(1 | 4, text(gs2 + bare), text(`${withoutProof},p=${proof}`)));
  void SCRAM_SHA_256_PLUS;
}

// Config files: the example config and the shapes the tests use.
add(
  "config",
  new Uint8Array(readFileSync(new URL("../deploy/pgrelay.yaml", import.meta.url))),
  text("listen: 0.0.0.0:7000\nupstream: db:5433\nstartup_timeout: 5s\nworkers: 2\nmax_message_size: 64MiB\n"),
  text(
    'tls:\n  mode: terminate\n  cert: /etc/pgrelay/cert.pem\n  key: /etc/pgrelay/key.pem\n  require: true\nupstream_tls:\n  mode: verify-full\n  ca: /etc/ssl/ca.pem\n  server_name: db.internal\nauth:\n  mode: scram\n  file: /etc/pgrelay/userlist.txt\n  query: "select rolname, rolpassword from pg_authid where rolname = $1"\n  user: pgrelay\nadmin:\n  listen: 127.0.0.1:9187\n',
  ),
  text(
    'policy:\n  default: deny\n  rules:\n    - name: office\n      allow: { source: ["10.0.0.0/8", "fe80::/10"], tls: true, time: { days: [mon-fri], between: "09:00-18:00", tz: Europe/Berlin } }\n    - deny: { user: "intern*", database: prod }\nlimits:\n  max_connections: 100\n  per_user: 10\naudit:\n  path: "-"\n  queries: true\n  max_query_length: 4096\n  redact_literals: true\n',
  ),
);
add(
  "policy",
  text(
    'default: deny\nenforce_on_reload: true\nrules:\n  - name: office\n    allow: { source: ["10.0.0.0/8", "::1/128"], tls: true }\n  - deny: { user: ["intern*", "temp?"], database: prod, application_name: "*cron*" }\n  - allow: { time: { days: [sat-sun], between: "22:00-06:00", tz: UTC } }\n',
  ),
  text("rules:\n  - allow: {}\n"),
  text('{ default: allow, rules: [ { name: x, deny: { source: "192.168.1.0/24" } } ] }\n'),
);
add(
  "time_window",
  text('days: [mon-fri]\nbetween: "09:00-18:00"\ntz: Europe/Berlin\n'),
  text("{ days: fri-mon, between: '22:30-06:15' }\n"),
  text("between: 00:00-24:00\ntz: America/St_Johns\n"),
  text("days: [sun, sat]\n"),
);

// Queries as psql, pgbench and ORMs send them, in both standard_conforming_strings modes.
const QUERIES = [
  "select 1",
  "BEGIN;",
  "UPDATE pgbench_accounts SET abalance = abalance + -4093 WHERE aid = 61337;",
  "SELECT abalance FROM pgbench_accounts WHERE aid = 61337;",
  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 61337, -4093, CURRENT_TIMESTAMP);",
  "SELECT n.nspname as \"Schema\", c.relname as \"Name\" FROM pg_catalog.pg_class c WHERE c.relkind IN ('r','p','v','m','S','f','') AND n.nspname <> 'pg_catalog' ORDER BY 1,2;",
  "select 'it''s', E'a\\'b\\\\', $$body 'x'$$, $fn$ begin return 1; end $fn$, B'1010', X'1F', U&'d\\0061t' UESCAPE '!'",
  'select /* outer /* inner */ \'still comment\' */ 1 -- trailing \'x\'\n, 0x1F, 1_000_000, 1.5e10, .5, "quoted ""id"""',
  "select 'a'\n'b' as continued, $é$ non-ASCII tag $é$, $1::int, a$b$c from t",
  "set standard_conforming_strings = off; select 'a\\' , secret, ' from t",
];
for (const sql of QUERIES) add("redact_mutate", encodeSqlInput(sql, true), encodeSqlInput(sql, false));

for (const [target, items] of Object.entries(seeds)) {
  const dir = join(SEED_DIR, target);
  mkdirSync(dir, { recursive: true });
  for (const file of readdirSync(dir)) if (file.startsWith("built-")) rmSync(join(dir, file));
  items.forEach((item, i) => writeFileSync(join(dir, `built-${String(i).padStart(2, "0")}.bin`), item));
  console.log(`${target}: ${items.length} seeds`);
}
