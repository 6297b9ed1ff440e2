/**
 * Malformed clients: garbage, huge and short lengths, truncated startup packets, SSLRequest games. Each is
 * expected to be refused (a FATAL where pgrelay owes one) and its connection closed within a bound.
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { errorFields, parseBackendFrames } from "../../tests/support/backend_frames.ts";
import { sslRequest, startupMessage } from "../../tests/support/frontend_frames.ts";
import { RawClient } from "../../tests/support/raw_client.ts";
import { type LoadContext, type LoopSpec, type Scope, sleep } from "../load_loop.ts";
import { STARTUP_TIMEOUT_S } from "../settings.ts";
import { closedWithin, connectTcp, openSession, readExactly, vanish } from "../wire.ts";

/** pgrelay must have closed a refused connection by then. */
const CLOSE_WITHIN_MS = 10_000;
/** Bounded by startup_timeout: a stalled startup must be reaped. */
const STALL_CLOSE_WITHIN_MS = (STARTUP_TIMEOUT_S + 10) * 1000;

type Scenario = (ctx: LoadContext, scope: Scope) => Promise<string>;

/** Reads until pgrelay closes; returns the SQLSTATE of its FATAL, or throws if none came or it stayed open. */
async function fatalThenClose(client: RawClient, what: string, within = CLOSE_WITHIN_MS): Promise<string> {
  let rest: Uint8Array;
  try {
    rest = await client.readRawUntilClose(within);
  } catch (err) {
    throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)} (pgrelay kept it open)`);
  }
  let frames;
  try {
    frames = parseBackendFrames(rest);
  } catch {
    throw new Error(`${what}: pgrelay answered ${rest.length} bytes that are not backend messages`);
  }
  const error = frames.find((m) => m.type === "E");
  if (error === undefined) throw new Error(`${what}: closed without an ErrorResponse (got ${frames.map((m) => m.type).join("") || "nothing"})`);
  const f = errorFields(error.body);
  return `${f["S"]} ${f["C"]}`;
}

async function mustClose(socket: Socket, what: string, within = CLOSE_WITHIN_MS): Promise<void> {
  if (!(await closedWithin(socket, within))) throw new Error(`${what}: connection still open after ${within} ms`);
}

const SCENARIOS: readonly Scenario[] = [
  async function garbage(ctx, scope) {
    const socket = await connectTcp(ctx, scope);
    const bytes = randomBytes(16 + Math.floor(Math.random() * 240));
    bytes[0] = 0x7f; // a length over 10000: never mistaken for direct TLS (0x16) or a small valid packet
    socket.end(bytes);
    await mustClose(socket, "garbage");
    return "garbage bytes: closed";
  },
  async function hugeStartupLength(ctx, scope) {
    const socket = await connectTcp(ctx, scope);
    const client = RawClient.over(socket);
    client.sendBytes(new Uint8Array([0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]));
    return `huge startup length: ${await fatalThenClose(client, "huge startup length")}`;
  },
  async function truncatedStartup(ctx, scope) {
    const socket = await connectTcp(ctx, scope);
    socket.end(startupMessage({ user: ctx.users.trust.user }).subarray(0, 6));
    await mustClose(socket, "truncated startup");
    return "truncated startup then FIN: closed";
  },
  async function truncatedStartupStall(ctx, scope) {
    const socket = await connectTcp(ctx, scope);
    socket.write(startupMessage({ user: ctx.users.trust.user }).subarray(0, 10));
    await sleep(1000);
    vanish(socket, "rst");
    return "truncated startup, stall, vanish";
  },
  async function sslRequestThenClose(ctx, scope) {
    const socket = await connectTcp(ctx, scope);
    socket.write(sslRequest());
    if ((await readExactly(socket, 1))[0] !== 0x53) throw new Error("SSLRequest not answered S");
    socket.end();
    await mustClose(socket, "SSLRequest then FIN");
    return "SSLRequest, S, then FIN";
  },
  async function sslRequestThenReset(ctx, scope) {
    const socket = await connectTcp(ctx, scope);
    socket.write(sslRequest());
    await sleep(Math.floor(Math.random() * 3));
    vanish(socket, "rst");
    return "SSLRequest then vanish";
  },
  async function bufferStuffing(ctx, scope) {
    const socket = await connectTcp(ctx, scope);
    const client = RawClient.over(socket);
    const request = sslRequest();
    const startup = startupMessage({ user: ctx.users.trust.user });
    const both = new Uint8Array(request.length + startup.length);
    both.set(request);
    both.set(startup, request.length);
    client.sendBytes(both);
    // PostgreSQL's answer is FATAL 08P01 before any TLS; pgrelay's must at least close the connection.
    try {
      return `SSLRequest + plaintext in one packet: ${await fatalThenClose(client, "buffer stuffing")}`;
    } catch (err) {
      if (client.isClosed) return "SSLRequest + plaintext in one packet: closed";
      throw err;
    }
  },
  async function plaintextAfterS(ctx, scope) {
    const socket = await connectTcp(ctx, scope);
    socket.write(sslRequest());
    if ((await readExactly(socket, 1))[0] !== 0x53) throw new Error("SSLRequest not answered S");
    socket.write(startupMessage({ user: ctx.users.trust.user }));
    await mustClose(socket, "plaintext after S", STALL_CLOSE_WITHIN_MS);
    return "plaintext where a TLS handshake belongs: closed";
  },
  async function hugeMessageLength(ctx, scope) {
    const { client } = await openSession(ctx, scope);
    client.sendBytes(new Uint8Array([0x51, 0x7f, 0xff, 0xff, 0xf0]));
    return `huge message length after login: ${await fatalThenClose(client, "huge message length")}`;
  },
  async function shortMessageLength(ctx, scope) {
    const { client } = await openSession(ctx, scope);
    client.sendBytes(new Uint8Array([0x51, 0, 0, 0, 2]));
    return `message length 2 after login: ${await fatalThenClose(client, "short message length")}`;
  },
  async function badProtocolVersion(ctx, scope) {
    const socket = await connectTcp(ctx, scope);
    const client = RawClient.over(socket);
    client.sendBytes(startupMessage({ user: ctx.users.trust.user }, 0x00020000));
    return `protocol 2.0 startup: ${await fatalThenClose(client, "protocol 2.0")}`;
  },
];

export function malformedLoop(ctx: LoadContext): LoopSpec {
  return {
    kind: "malformed",
    pauseMs: 100,
    timeoutMs: STALL_CLOSE_WITHIN_MS + 10_000,
    async op(scope, i) {
      const scenario = SCENARIOS[i % SCENARIOS.length]!;
      scope.label = `malformed ${scenario.name}`;
      return { expected: await scenario(ctx, scope) };
    },
  };
}
