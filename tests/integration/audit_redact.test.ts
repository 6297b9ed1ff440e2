/**
 * redact_literals against real PostgreSQL: each query is one that slipped past the old redaction, run
 * through pgrelay by psql. The server's own answer shows how it lexed the text (the secret is a string
 * constant it returns); the audit log must not contain it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuditLog } from "../../src/audit/audit_log.ts";
import type { Proxy } from "../../src/core/proxy.ts";
import { MemoryAuditWriter as MemoryWriter } from "../support/memory_audit_writer.ts";
import { runPsql } from "../support/clients.ts";
import { startTestProxy } from "../support/pgrelay.ts";
import { type PostgresCluster, startPostgres } from "../support/postgres.ts";
import { sleep } from "../support/wait.ts";

describe("redact_literals with real PostgreSQL", () => {
  let cluster: PostgresCluster;
  let proxy: Proxy | undefined;

  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    await proxy?.close();
    await cluster?.stop();
  });

  it("masks what the server reads as literals: nested comments, $é$ tags, E'' continuations, standard_conforming_strings=off", async () => {
    const writer = new MemoryWriter();
    const audit = new AuditLog(
      { path: "-", queries: true, maxQueryLength: 4096, redactLiterals: true },
      writer,
    );
    proxy = await startTestProxy(cluster, { auditor: audit });
    const login = { host: "127.0.0.1", port: proxy.address.port, ...cluster.users.scram, database: "app" };
    const result = await runPsql([
      "-At",
      "-c",
      "select /* outer /* inner */ ' */ 'SECRET_nested' as c",
      "-c",
      "select $é$SECRET_dollar 'x'$é$ as c",
      "-c",
      "select E'a'\n'\\' SECRET_continued' as c",
      "-c",
      "select 1 /* SECRET_comment */ as c -- SECRET_line",
      "-c",
      "set standard_conforming_strings = off",
      "-c",
      "select 'a\\' , SECRET_scs, ' as c",
    ], login);
    assert.equal(result.code, 0, result.stderr);
    // How the server read them: each secret was inside a string constant (or a comment).
    assert.deepEqual(result.stdout.replace(/\n$/, "").split("\n"), [
      "SECRET_nested",
      "SECRET_dollar 'x'",
      "a' SECRET_continued",
      "1",
      "SET",
      "a' , SECRET_scs, ",
    ]);
    const deadline = Date.now() + 5000;
    while (!writer.events().some((e) => e.event === "session_end")) {
      if (Date.now() > deadline) throw new Error(`no session_end yet:\n${writer.text}`);
      await sleep(20);
      await audit.flush();
    }
    const texts = writer.events().filter((e) => e.event === "query").map((e) => e.text);
    assert.deepEqual(texts, [
      "select /*?*/ ? as c",
      "select ? as c",
      "select ? as c",
      "select ? /*?*/ as c --?",
      "set standard_conforming_strings = off",
      "select ?", // either reading's literals: 'a\' , SECRET_scs, ' (off) and ' as c (on, unterminated)
    ]);
    assert.doesNotMatch(writer.text, /SECRET_/);
  });
});
