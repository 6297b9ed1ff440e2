/**
 * What pgrelay believes when it logs in to the server itself (auth.mode scram): a fake server that skips
 * steps of SCRAM, forges the server signature, asks for nothing (trust) or asks auth.user for a cleartext
 * password must not get a client to ReadyForQuery, nor get the password. The server's AuthenticationOk is
 * believed only after its SASLFinal proved it holds the verifier (auth.upstream_require_auth, like libpq's
 * require_auth, can allow cleartext or trust).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { encodeBase64 } from "../../src/auth/base64.ts";
import { makeScramVerifier } from "../../src/auth/scram_keys.ts";
import { ScramServerExchange } from "../../src/auth/scram_server.ts";
import { formatScramVerifier, type ScramVerifier } from "../../src/auth/scram_verifier.ts";
import type { LogFields, Logger } from "../../src/core/logger.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import type { UpstreamAuthMethod } from "../../src/backend/upstream_auth.ts";
import {
  afterAuthenticationOk,
  authentication,
  authenticationSasl,
  backendFrame,
  concat,
  dataRow,
  type FakeConnection,
  startFakePostgres,
} from "../support/fake_postgres.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { BackendError, RawClient } from "../support/raw_client.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How the fake server answers a login. */
type Step =
  | "honest"
  | "ok-after-initial"
  | "ok-after-final"
  | "bad-signature"
  | "trust"
  | "cleartext"
  | "md5";

const SALT = Uint8Array.from({ length: 16 }, (_, i) => 40 + i);
const PASSWORDS = { alice: "alice-pw", bob: "bob-pw", pgrelay_auth: "auth-pw" } as const;
type User = keyof typeof PASSWORDS;
const VERIFIERS = Object.fromEntries(
  await Promise.all(
    Object.entries(PASSWORDS).map(async (
      [user, password],
    ) => [user, await makeScramVerifier(password, SALT, 4096)]),
  ),
) as Record<User, ScramVerifier>;
const AUTH_USER = "pgrelay_auth";

/** What the fake server does for the next logins: one step for auth.user, one for everyone else. */
const scenario: { user: Step; authUser: Step } = { user: "honest", authUser: "honest" };

function saslInitial(body: Uint8Array): { mechanism: string; data: Uint8Array } {
  const end = body.indexOf(0);
  const length = new DataView(body.buffer, body.byteOffset + end + 1, 4).getInt32(0);
  return { mechanism: decoder.decode(body.subarray(0, end)), data: body.subarray(end + 5, end + 5 + length) };
}

/** Answers one login as `step` says. */
async function serveLogin(connection: FakeConnection, user: User, step: Step): Promise<void> {
  switch (step) {
    case "trust":
      return connection.send(afterAuthenticationOk());
    case "cleartext":
    case "md5":
      connection.send(step === "md5" ? authentication(5, new Uint8Array([1, 2, 3, 4])) : authentication(3));
      await connection.next();
      return connection.send(afterAuthenticationOk());
  }
  connection.send(authenticationSasl(["SCRAM-SHA-256"]));
  const initial = saslInitial((await connection.next()).body);
  if (step === "ok-after-initial") return connection.send(afterAuthenticationOk());
  const exchange = new ScramServerExchange(VERIFIERS[user], { user, offerPlus: false });
  const first = await exchange.handleInitial(initial.mechanism, initial.data);
  if ("error" in first) throw new Error(first.error.message);
  connection.send(authentication(11, first.serverFirst));
  const clientFinal = (await connection.next()).body;
  if (step === "ok-after-final") return connection.send(afterAuthenticationOk());
  const final = await exchange.handleFinal(clientFinal);
  if ("error" in final) throw new Error(final.error.message);
  const serverFinal = step === "bad-signature"
    ? encoder.encode(`v=${encodeBase64(new Uint8Array(32).fill(7))}`)
    : final.serverFinal;
  connection.send(concat(authentication(12, serverFinal), afterAuthenticationOk()));
}

/** A recording logger. */
function recordingLogger(): Logger & { lines: Array<LogFields & { event: string }> } {
  const lines: Array<LogFields & { event: string }> = [];
  return { lines, log: (_level, event, fields = {}) => lines.push({ ...fields, event }) };
}

describe("upstream login: pgrelay verifies the server", () => {
  let fake: Awaited<ReturnType<typeof startFakePostgres>>;
  const proxies = new Map<string, Proxy>();
  const logger = recordingLogger();

  before(async () => {
    fake = await startFakePostgres(async (connection) => {
      const params = await connection.startup;
      const user = params["user"] as User;
      await serveLogin(connection, user, user === AUTH_USER ? scenario.authUser : scenario.user);
      if (user !== AUTH_USER) return;
      // auth.query: Parse, Bind, Execute, Sync → the verifier of the user pgrelay looks up (always bob here).
      while ((await connection.next()).type !== "S");
      connection.send(concat(
        backendFrame("1"),
        backendFrame("2"),
        dataRow(formatScramVerifier(VERIFIERS.bob)),
        backendFrame("C", encoder.encode("SELECT 1\0")),
        backendFrame("Z", encoder.encode("I")),
      ));
    });
  });
  after(async () => {
    for (const proxy of proxies.values()) await proxy.close();
    await fake?.close();
  });

  /** A proxy in front of the fake server; alice is in the auth file, bob is found by auth.query. */
  async function proxyFor(requireAuth?: UpstreamAuthMethod[]): Promise<Proxy> {
    const key = requireAuth?.join(",") ?? "default";
    let proxy = proxies.get(key);
    if (!proxy) {
      const users = new Map([["alice", formatScramVerifier(VERIFIERS.alice)], [
        AUTH_USER,
        PASSWORDS.pgrelay_auth,
      ]]);
      proxy = await startTestProxy({ host: "127.0.0.1", port: fake.port }, {
        logger,
        startupTimeoutMs: 10_000,
        authentication: {
          mode: "scram",
          users,
          query: {
            query: "select v",
            user: AUTH_USER,
            password: PASSWORDS.pgrelay_auth,
            database: "postgres",
            requireAuth,
          },
          upstreamRequireAuth: requireAuth,
        },
      });
      proxies.set(key, proxy);
    }
    return proxy;
  }

  /** Logs in through pgrelay; "ready" or the error pgrelay sent. */
  async function login(
    user: "alice" | "bob",
    steps: { user?: Step; authUser?: Step },
    requireAuth?: UpstreamAuthMethod[],
  ) {
    scenario.user = steps.user ?? "honest";
    scenario.authUser = steps.authUser ?? "honest";
    const proxy = await proxyFor(requireAuth);
    const before = fake.connections.length;
    const client = await RawClient.connect("127.0.0.1", proxy.address.port);
    try {
      client.startup({ user, database: "postgres" });
      const result = await client.authenticate(PASSWORDS[user]).then(
        () => "ready" as const,
        (error: unknown) => error,
      );
      if (result !== "ready") assert.ok(result instanceof BackendError, String(result));
      return { result, upstream: fake.connections.slice(before) };
    } finally {
      await client.close();
    }
  }

  it("the fake server, answering honestly, lets both kinds of login through (the control)", async () => {
    assert.equal((await login("alice", {})).result, "ready");
    const viaQuery = await login("bob", {});
    assert.equal(viaQuery.result, "ready");
    assert.equal(viaQuery.upstream.length, 2, "auth.query's connection, then bob's own");
  });

  for (
    const [step, reason] of [
      ["ok-after-initial", /AuthenticationOk before completing SCRAM authentication/],
      ["ok-after-final", /AuthenticationOk before completing SCRAM authentication/],
      ["bad-signature", /server signature did not verify/],
      [
        "trust",
        /authentication method requirement "scram-sha-256" failed: server did not complete authentication/,
      ],
    ] as const
  ) {
    it(`ClientKey login: a server that answers "${step}" is refused with FATAL 08006`, async () => {
      const { result } = await login("alice", { user: step });
      assert.ok(result instanceof BackendError, "no ReadyForQuery");
      assert.equal(result.fields["S"], "FATAL");
      assert.equal(result.code, "08006");
      assert.match(
        result.fields["M"] ?? "",
        /^pgrelay could not verify the server while logging in as "alice": /,
      );
      assert.match(result.fields["M"] ?? "", reason);
      const logged = logger.lines.filter((l) => l.event === "auth_failed" && l.user === "alice").at(-1);
      assert.match(String(logged?.message), reason, "the log says why");
    });
  }

  it("ClientKey login: auth.upstream_require_auth none lets a trust server through", async () => {
    assert.equal((await login("alice", { user: "trust" }, ["scram-sha-256", "none"])).result, "ready");
  });

  for (
    const [step, reason] of [
      [
        "cleartext",
        /authentication method requirement "scram-sha-256" failed: server requested a cleartext password/,
      ],
      ["md5", /server requested a hashed password/],
      ["trust", /server did not complete authentication/],
      ["ok-after-initial", /AuthenticationOk before completing SCRAM authentication/],
      ["ok-after-final", /AuthenticationOk before completing SCRAM authentication/],
      ["bad-signature", /server signature did not verify/],
    ] as const
  ) {
    it(`auth.query: a server that answers auth.user with "${step}" is refused, and gets no password`, async () => {
      const logged = logger.lines.length;
      const { result, upstream } = await login("bob", { authUser: step });
      assert.ok(result instanceof BackendError, "no ReadyForQuery");
      assert.equal(result.fields["S"], "FATAL");
      // The reason goes to the log (and, where pgrelay tells clients why auth.query failed, to the client).
      const told = [
        result.fields["M"],
        ...logger.lines.slice(logged).flatMap((line) => Object.values(line).map(String)),
      ].join("\n");
      assert.match(told, reason);
      assert.equal(upstream.length, 1, "bob's own login never starts");
      const sent = upstream[0]!.received.map((m) => decoder.decode(m.body));
      assert.ok(
        !sent.some((text) => text.includes(PASSWORDS.pgrelay_auth)),
        `the password never left pgrelay: ${JSON.stringify(sent)}`,
      );
      assert.ok(!upstream[0]!.received.some((m) => m.type === "P"), "no query ran");
    });
  }

  it("auth.query: auth.upstream_require_auth password allows the cleartext password", async () => {
    const { result, upstream } = await login("bob", { authUser: "cleartext" }, ["scram-sha-256", "password"]);
    assert.equal(result, "ready");
    const password = upstream[0]!.received.find((m) => m.type === "p");
    assert.equal(decoder.decode(password?.body), `${PASSWORDS.pgrelay_auth}\0`);
  });
});
