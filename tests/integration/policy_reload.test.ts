/**
 * pgrelay as a process with policy, limits and an audit file: SIGHUP changes decisions for new sessions
 * without dropping old ones, reopens the audit file (logrotate), and with enforce_on_reload ends the live
 * sessions a new rule denies with FATAL 57P01.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { runPsql } from "../support/clients.ts";
import { spawnPgrelay } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { waitFor } from "../support/wait.ts";



describe("policy, limits and audit reload (SIGHUP)", () => {
  let cluster: PostgresCluster;
  let dir = "";
  before(async () => {
    cluster = await startPostgres();
    dir = await mkdtemp(join(tmpdir(), "pgrelay-reload-"));
  });
  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("new rules apply to new sessions, old sessions keep running, the audit file is reopened; enforce_on_reload ends denied sessions", async () => {
    const file = join(dir, "pgrelay.yaml");
    const auditPath = join(dir, "audit", "audit.jsonl");
    const config = (policy: string, limits = "") =>
      `upstream: 127.0.0.1:${cluster.port}\naudit: { path: "${auditPath}", queries: true }\n${policy}${limits}`;
    await writeFile(file, config("policy: { default: allow }\n"));
    const proxy = await spawnPgrelay(["--config", file, "--admin", "127.0.0.1:0"]);
    const login = {
      host: "127.0.0.1",
      port: proxy.address.port,
      ...cluster.users.scram,
      database: "postgres",
    };
    const reloads = () => (proxy.stderr().match(/"event":"config_reloaded"/g) ?? []).length;
    const reload = async () => {
      const before = reloads();
      process.kill(proxy.pid, "SIGHUP");
      await waitFor(() => reloads() > before, "config_reloaded");
    };
    const old = new pg.Client(login);
    const oldErrors: string[] = [];
    old.on("error", (error: Error & { code?: string }) => oldErrors.push(`${error.code} ${error.message}`));
    try {
      await old.connect();
      assert.equal((await old.query("select 'before' as w")).rows[0].w, "before");

      // 1. A rule that denies scram_user, and logrotate moved the audit file away before the SIGHUP.
      await writeFile(
        file,
        config(
          `policy:\n  rules:\n    - name: scram-out\n      deny: { user: scram_user }\n`,
          "limits: { per_user: 1 }\n",
        ),
      );
      await rename(auditPath, auditPath + ".1");
      await reload();
      const denied = await runPsql(["-c", "select 1"], login);
      assert.equal(denied.code, 2);
      assert.match(denied.stderr, /FATAL: {2}connection denied by pgrelay policy rule "scram-out"/);
      assert.equal(
        (await old.query("select 'after reload' as w")).rows[0].w,
        "after reload",
        "the old session still runs",
      );
      // The reloaded limit counts sessions of every user from now on; md5_user may have one.
      const md5Login = { ...login, ...cluster.users.md5 };
      const md5 = new pg.Client(md5Login);
      await md5.connect();
      const second = await runPsql(["-c", "select 1"], md5Login);
      assert.match(
        second.stderr,
        /FATAL: {2}too many connections for user "md5_user": pgrelay allows 1 \(per_user\)/,
      );
      await md5.end();

      // 2. enforce_on_reload ends the old session that the rule now denies.
      await writeFile(
        file,
        config(
          `policy:\n  enforce_on_reload: true\n  rules:\n    - name: scram-out\n      deny: { user: scram_user }\n`,
        ),
      );
      await reload();
      await waitFor(() => oldErrors.length > 0, "the old session's error");
      assert.match(
        oldErrors[0]!,
        /^57P01 terminating connection: pgrelay policy rule "scram-out" now denies it/,
      );
      assert.match(proxy.stderr(), /"event":"session_revoked".*"user":"scram_user"/);
      assert.match(proxy.stderr(), /"event":"policy_enforced","sessions_revoked":1/);

      const metrics = await (await fetch(`http://127.0.0.1:${proxy.admin!.port}/metrics`)).text();
      assert.match(metrics, /^pgrelay_audit_events_dropped_total 0$/m);
      assert.match(metrics, /^pgrelay_client_connections_total\{outcome="denied"\} 1$/m);
      assert.match(metrics, /^pgrelay_client_connections_total\{outcome="limited"\} 1$/m);
    } finally {
      await old.end().catch(() => {});
      assert.equal(await proxy.stop(), 0);
    }
    const parse = (text: string) => text.trimEnd().split("\n").map((line) => JSON.parse(line));
    const rotated = parse(await readFile(auditPath + ".1", "utf8"));
    const current = parse(await readFile(auditPath, "utf8"));
    assert.deepEqual(rotated.map((e) => e.event), ["session_start", "query"], "written before the rotation");
    const events = current.map((e) => `${e.event}${e.event === "query" ? "" : ` ${e.user}`}`);
    assert.deepEqual(
      events.slice(0, 2),
      ["denied scram_user", "query"],
      "after the rotation, into the new file",
    );
    assert.ok(events.includes("revoked scram_user"), events.join(", "));
    assert.ok(events.includes("session_start md5_user"), events.join(", "));
    const end = current.find((e) => e.event === "session_end" && e.user === "scram_user");
    assert.equal(end?.reason, "policy_revoked");
    assert.ok(end.bytes_from_client > 0 && end.bytes_from_server > 0);
  });

  it('audit path "-" writes JSON lines to stdout', async () => {
    const file = join(dir, "stdout.yaml");
    await writeFile(
      file,
      `upstream: 127.0.0.1:${cluster.port}\naudit: { path: "-", redact_literals: true }\n`,
    );
    const proxy = await spawnPgrelay(["--config", file]);
    try {
      const login = {
        host: "127.0.0.1",
        port: proxy.address.port,
        ...cluster.users.scram,
        database: "postgres",
      };
      assert.equal((await runPsql(["-c", "select 'hidden' as a"], login)).code, 0);
      await waitFor(() => proxy.stdout().includes('"event":"session_end"'), "session_end on stdout");
      const events = proxy.stdout().trimEnd().split("\n").map((line) => JSON.parse(line));
      assert.deepEqual(events.map((e) => e.event), ["session_start", "query", "session_end"]);
      assert.equal(events[1].text, "select ? as a");
      assert.doesNotMatch(proxy.stderr(), /"event":"query"/, "audit events are not mixed into the log");
    } finally {
      assert.equal(await proxy.stop(), 0);
    }
  });
});
