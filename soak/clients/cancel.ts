/**
 * Cancels of a running pg_sleep, alternately with postgres.js (query.cancel()) and with a raw
 * CancelRequest on a new connection; the session must answer 57014 and then go on working.
 *
 * PostgreSQL before 18 signals a canceled backend twice: the process that handles the CancelRequest sends
 * SIGINT to the backend's pid and then to its process group (postmaster.c signal_child). If that process is
 * preempted between the two kill() calls long enough for the canceled query to end and the client's next
 * statement to start (a loaded machine), the second SIGINT cancels that statement too, with the same
 * 57014. So the statement after a cancel may fail once with 57014: it is retried once and counted as a
 * separate expected outcome; a second failure is an error.
 */
import postgres from "postgres";
import { errorFields } from "../../tests/support/backend_frames.ts";
import { cancelRequest } from "../../tests/support/frontend_frames.ts";
import type { RawClient } from "../../tests/support/raw_client.ts";
import { type LoadContext, type LoopSpec, randomInt, type Scope, sleep } from "../load_loop.ts";
import { HOST } from "../settings.ts";
import { connectTcp, openSession, simpleQuery } from "../wire.ts";

const SLEEP_SECONDS = 20;
const CANCELED = "57014";
/** The expected outcome when the statement after a cancel caught the cancel's second SIGINT (see above). */
const SECOND_SIGINT = "the next statement canceled too (PostgreSQL < 18 signals the backend twice), retried";

export function cancelLoop(ctx: LoadContext): LoopSpec {
  return {
    kind: "cancel",
    pauseMs: 200,
    timeoutMs: (SLEEP_SECONDS + 20) * 1000,
    op: (scope, i) => (i % 2 === 0 ? viaPostgresJs(ctx, scope) : viaRawCancel(ctx, scope)),
  };
}

async function viaPostgresJs(ctx: LoadContext, scope: Scope): Promise<{ expected: string }> {
  let sockets = 0;
  // `socket` (a function returning a connected socket) is documented by postgres.js but not in its types.
  const options = {
    // Our own connected sockets, so their ports are labelled: the first serves the session, the next
    // one carries postgres.js's CancelRequest.
    socket: () => {
      scope.label = sockets++ === 0 ? "cancel postgres.js: the session" : "cancel postgres.js: its CancelRequest";
      return connectTcp(ctx, scope);
    },
    host: HOST,
    port: ctx.port,
    username: ctx.users.scram.user,
    password: ctx.users.scram.password,
    database: "app",
    max: 1,
    ssl: false,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: `soak ${ctx.label} cancel postgres.js` },
  };
  const sql = postgres(options);
  scope.defer(() => void sql.end({ timeout: 0 }).catch(() => {}));
  await sql`select 1`; // connected before the clock starts
  const query = sql`select pg_sleep(${SLEEP_SECONDS})`;
  const outcome = query.then(() => "finished", (error: { code?: string; message?: string }) => error.code ?? String(error.message));
  await sleep(200 + randomInt(300));
  await query.cancel();
  const code = await outcome;
  if (code !== CANCELED) throw new Error(`postgres.js cancel: the query ended with ${code}, not ${CANCELED}`);
  const selectTwo = () => sql`select 2 as two`;
  let secondSigint = false;
  const rows = await selectTwo().catch((error: { code?: string }) => {
    if (error.code !== CANCELED) throw error;
    secondSigint = true;
    return selectTwo();
  });
  if (rows[0]?.["two"] !== 2) throw new Error("postgres.js: the session did not work after the cancel");
  await sql.end({ timeout: 5 });
  return { expected: `${CANCELED} query canceled (postgres.js)${secondSigint ? `; ${SECOND_SIGINT}` : ""}` };
}

async function viaRawCancel(ctx: LoadContext, scope: Scope): Promise<{ expected: string }> {
  scope.label = "cancel: the session";
  const { client, key } = await openSession(ctx, scope);
  if (key === undefined) throw new Error("no BackendKeyData after login");
  client.query(`select pg_sleep(${SLEEP_SECONDS})`);
  await sleep(200 + randomInt(300));
  scope.label = "cancel: the CancelRequest";
  const canceller = await connectTcp(ctx, scope);
  canceller.end(cancelRequest(key.pid, key.secret));
  const messages = await client.readUntilReady((SLEEP_SECONDS + 10) * 1000);
  const error = messages.find((m) => m.type === "E");
  const code = error === undefined ? "no error (pg_sleep finished)" : errorFields(error.body)["C"];
  if (code !== CANCELED) throw new Error(`raw CancelRequest: the query ended with ${code}, not ${CANCELED}`);
  const secondSigint = await selectTwoAfterCancel(client);
  client.terminate();
  await client.close();
  return { expected: `${CANCELED} query canceled (CancelRequest)${secondSigint ? `; ${SECOND_SIGINT}` : ""}` };
}

/** `select 2` after a cancel, retried once if it fails with 57014; true when it had to be retried. */
async function selectTwoAfterCancel(client: RawClient): Promise<boolean> {
  client.query("select 2");
  const messages = await client.readUntilReady(20_000);
  const error = messages.find((m) => m.type === "E");
  if (error === undefined) return false;
  const code = errorFields(error.body)["C"];
  if (code !== CANCELED) throw new Error(`select 2 after the cancel failed with ${code}: ${errorFields(error.body)["M"]}`);
  await simpleQuery(client, "select 2");
  return true;
}
