/** Sessions over TLS (pgrelay terminates it): SCRAM login, a few queries, a clean goodbye; raw and npm pg. */
import pg from "pg";
import type { LoadContext, LoopSpec, Scope } from "../load_loop.ts";
import { HOST } from "../settings.ts";
import { closedWithin, labelledSocket, openSession, simpleQuery } from "../wire.ts";

const QUERIES = ["select 1", "select repeat('z', 20000)", "select count(*) from generate_series(1, 1000)"];

export function tlsLoop(ctx: LoadContext): LoopSpec {
  return {
    kind: "tls",
    pauseMs: 100,
    timeoutMs: 30_000,
    op: (scope, i) => (i % 3 === 2 ? viaNodePg(ctx, scope) : viaRaw(ctx, scope)),
  };
}

async function viaRaw(ctx: LoadContext, scope: Scope): Promise<number> {
  scope.label = "tls session";
  const { client, socket } = await openSession(ctx, scope, { tls: true, as: "scram", database: "app" });
  for (const sql of QUERIES) await simpleQuery(client, sql);
  client.terminate();
  if (!(await closedWithin(socket, 5000))) throw new Error("pgrelay kept the TLS connection open after Terminate");
  return QUERIES.length;
}

async function viaNodePg(ctx: LoadContext, scope: Scope): Promise<number> {
  scope.label = "tls session (npm pg)";
  const client = new pg.Client({
    host: HOST,
    port: ctx.port,
    user: ctx.users.scram.user,
    password: ctx.users.scram.password,
    database: "app",
    ssl: { ca: ctx.pki.ca.certPem, servername: "localhost" },
    connectionTimeoutMillis: 10_000,
    application_name: `soak ${ctx.label} tls pg`,
    stream: () => labelledSocket(ctx, scope),
  });
  client.on("error", () => {});
  scope.defer(() => void client.end().catch(() => {}));
  await client.connect();
  for (const sql of QUERIES) await client.query(sql);
  await client.end();
  return QUERIES.length;
}
