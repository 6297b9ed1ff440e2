/** The admin API's guards: loopback addresses, the bearer token check, the config rule tying them. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { carriesToken, requireBearerToken } from "../../src/admin/bearer_guard.ts";
import { statusPage } from "../../src/admin/status_page.ts";
import { createWorkersAdminHandler } from "../../src/admin/workers_admin_handler.ts";
import { workerOfSessionId, workerSessionIdPrefix } from "../../src/admin/worker_session_id.ts";
import { isLoopbackHost } from "../../src/config/loopback.ts";
import { configLayerFromYaml } from "../../src/config/load.ts";
import { buildConfig } from "../../src/host/build_config.ts";
import { parseCliArgs } from "../../src/cli/args.ts";

const request = (path: string, authorization?: string) =>
  new Request(`http://127.0.0.1${path}`, authorization === undefined ? {} : { headers: { authorization } });

describe("admin guards", () => {
  it("isLoopbackHost() takes 127.0.0.0/8, ::1 and localhost only", () => {
    for (
      const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]
    ) assert.ok(isLoopbackHost(host), host);
    for (
      const host of [
        "0.0.0.0",
        "::",
        "10.0.0.1",
        "128.0.0.1",
        "127.0.0.1.nip.io",
        "admin.internal",
        "::ffff:10.0.0.1",
        "127.0.0.256",
      ]
    ) {
      assert.ok(!isLoopbackHost(host), host);
    }
  });

  it("carriesToken() wants exactly `Bearer <token>`", async () => {
    const token = "s3cret-token-0123456789";
    assert.ok(await carriesToken(request("/", `Bearer ${token}`), token));
    assert.ok(await carriesToken(request("/", `bearer ${token}`), token), "the scheme is case-insensitive");
    for (
      const header of [
        undefined,
        token,
        `Bearer ${token}x`,
        `Bearer ${token.slice(1)}`,
        `Basic ${token}`,
        "Bearer ",
        `Bearer ${token} extra`,
      ]
    ) {
      assert.ok(!(await carriesToken(request("/", header), token)), String(header));
    }
  });

  it("requireBearerToken() answers 401 with WWW-Authenticate, lets probes through with status only", async () => {
    let token: string | undefined = "token-0123456789abcdef";
    const inner = (req: Request) => {
      const path = new URL(req.url).pathname;
      return Promise.resolve(
        new Response(path === "/readyz" ? "not ready: upstream 10.0.0.5:5432 unreachable\n" : "secret\n", {
          status: path === "/readyz" ? 503 : 200,
        }),
      );
    };
    const guarded = requireBearerToken(inner, () => token);
    const denied = await guarded(request("/sessions"));
    assert.equal(denied.status, 401);
    assert.match(denied.headers.get("www-authenticate") ?? "", /^Bearer realm="pgrelay"$/);
    assert.match(
      (await guarded(request("/sessions", "Bearer nope"))).headers.get("www-authenticate") ?? "",
      /error="invalid_token"/,
    );
    assert.equal(await (await guarded(request("/sessions", `Bearer ${token}`))).text(), "secret\n");
    const probe = await guarded(request("/readyz"));
    assert.deepEqual([probe.status, await probe.text()], [503, "not ready\n"]);
    assert.equal((await guarded(request("/readyz", `Bearer ${token}`))).status, 503);
    assert.match(await (await guarded(request("/readyz", `Bearer ${token}`))).text(), /10\.0\.0\.5/);
    token = undefined;
    assert.equal(
      (await guarded(request("/sessions"))).status,
      200,
      "no token configured: open (loopback only)",
    );
  });

  it("config refuses a non-loopback admin listen without token_file", () => {
    const issuesOf = (yaml: string) =>
      buildConfig([configLayerFromYaml(yaml, "p.yaml").layer!]).issues.map((i) => `${i.key}: ${i.message}`);
    assert.match(
      issuesOf("admin: { listen: 0.0.0.0:9187 }\n").join("\n"),
      /^admin: listen "0\.0\.0\.0" is not a loopback address/,
    );
    assert.deepEqual(issuesOf("admin: { listen: 0.0.0.0:9187, token_file: /etc/pgrelay/admin.token }\n"), []);
    assert.deepEqual(issuesOf("admin: { listen: 127.0.0.1:9187 }\n"), []);
    assert.match(
      issuesOf("admin: { listen: 127.0.0.1:9187, token: x }\n").join("\n"),
      /unknown key admin\.token \(known keys: admin\.listen, admin\.token_file\)/,
    );
    const file = configLayerFromYaml("admin: { listen: 0.0.0.0:9187, token_file: /t }\n", "p.yaml").layer!;
    const { config } = buildConfig([file, { values: parseCliArgs(["--admin", "127.0.0.1:1"]).overrides }]);
    assert.deepEqual(
      [config.adminListen, config.adminTokenFile],
      [{ hostname: "127.0.0.1", port: 1 }, "/t"],
      "--admin keeps the file's token_file",
    );
  });

  it("worker session id prefixes name their worker", () => {
    for (const worker of [1, 2, 9, 64]) {
      const id = `${workerSessionIdPrefix(worker)}-17`;
      assert.match(id, /^[0-9a-f]{6}-17$/);
      assert.equal(workerOfSessionId(id), worker);
    }
    assert.equal(workerOfSessionId("nope-1"), undefined);
  });
  it("requireBearerToken() serves the static status page / without the token, and its data only with it", async () => {
    const token = "token-0123456789abcdef";
    const guarded = requireBearerToken(async (req) => {
      const path = new URL(req.url).pathname;
      return path === "/" ? await statusPage(req) : new Response("{\"sessions\": []}\n");
    }, () => token);
    const page = await guarded(request("/"));
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'sha256-/);
    assert.match(await page.text(), /<title>pgrelay status<\/title>/);
    assert.equal((await guarded(request("/sessions"))).status, 401);
    assert.equal((await guarded(request("/index.html"))).status, 401, "only / itself is public");
    const head = await guarded(new Request("http://127.0.0.1/", { method: "HEAD" }));
    assert.deepEqual([head.status, await head.text()], [200, ""]);
  });

  it("the workers' supervisor serves the status page itself", async () => {
    const handler = createWorkersAdminHandler(() => []);
    const page = await handler(request("/"));
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  });
});
