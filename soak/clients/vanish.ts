/**
 * Clients that vanish: connect, get somewhere (mid-query, mid-COPY in or out, mid-TLS handshake, mid-auth),
 * then drop the socket (FIN or RST). The vanishing is the injected failure; anything failing before the
 * point of vanishing is unexpected.
 */
import { connect as tlsConnect } from "node:tls";
import { sslRequest, startupMessage } from "../../tests/support/frontend_frames.ts";
import { RawClient } from "../../tests/support/raw_client.ts";
import { type LoadContext, type LoopSpec, randomInt, type Scope, sleep } from "../load_loop.ts";
import { connectTcp, frame, openSession, readExactly, vanish, type VanishHow } from "../wire.ts";

type Scenario = (ctx: LoadContext, scope: Scope, how: VanishHow) => Promise<void>;
const encoder = new TextEncoder();

const SCENARIOS: readonly [string, Scenario][] = [
  ["mid-query", async (ctx, scope, how) => {
    const { client, socket } = await openSession(ctx, scope);
    client.query("select pg_sleep(3)");
    await sleep(50 + randomInt(200));
    vanish(socket, how);
  }],
  ["mid-COPY-in", async (ctx, scope, how) => {
    const { client, socket } = await openSession(ctx, scope);
    client.query("copy soak_sink from stdin");
    const first = await client.readMessage(10_000);
    if (first.type !== "G") throw new Error(`COPY FROM STDIN answered '${first.type}'`);
    client.sendBytes(frame("d", encoder.encode("1\tpartial row\n2\tanother\n")));
    await sleep(randomInt(100));
    vanish(socket, how);
  }],
  ["mid-COPY-out", async (ctx, scope, how) => {
    const { client, socket } = await openSession(ctx, scope);
    client.query("copy (select repeat('x', 1000) from generate_series(1, 50000)) to stdout");
    const first = await client.readMessage(10_000);
    if (first.type !== "H") throw new Error(`COPY TO STDOUT answered '${first.type}'`);
    vanish(socket, how);
  }],
  ["mid-query over TLS", async (ctx, scope, how) => {
    const { client, socket } = await openSession(ctx, scope, { tls: true, as: "scram", database: "app" });
    client.query("select pg_sleep(3)");
    await sleep(50 + randomInt(200));
    vanish(socket, how);
  }],
  ["mid-TLS-handshake", async (ctx, scope, how) => {
    const socket = await connectTcp(ctx, scope);
    socket.write(sslRequest());
    if ((await readExactly(socket, 1))[0] !== 0x53) throw new Error("SSLRequest not answered S");
    scope.track(tlsConnect({ socket, ca: ctx.pki.ca.certPem, servername: "localhost" }));
    await sleep(randomInt(5));
    vanish(socket, how);
  }],
  ["mid-auth", async (ctx, scope, how) => {
    const socket = await connectTcp(ctx, scope);
    const client = RawClient.over(socket);
    client.startup({ user: ctx.users.scram.user, database: "app" });
    await client.expectAuth(10, 10_000); // AuthenticationSASL: the password is never sent
    vanish(socket, how);
  }],
  ["right after StartupMessage", async (ctx, scope, how) => {
    const socket = await connectTcp(ctx, scope);
    socket.write(startupMessage({ user: ctx.users.trust.user, database: "postgres" }));
    await sleep(randomInt(3));
    vanish(socket, how);
  }],
];

export function vanishLoop(ctx: LoadContext): LoopSpec {
  return {
    kind: "vanish",
    pauseMs: 150,
    timeoutMs: 20_000,
    async op(scope, i) {
      const [where, scenario] = SCENARIOS[i % SCENARIOS.length]!;
      // RST and FIN take turns per round of scenarios, so every scenario sees both.
      const how: VanishHow = Math.floor(i / SCENARIOS.length) % 2 === 0 ? "rst" : "fin";
      scope.label = `vanish ${where} (${how})`;
      await scenario(ctx, scope, how);
      return { expected: `vanished ${where}` };
    },
  };
}
