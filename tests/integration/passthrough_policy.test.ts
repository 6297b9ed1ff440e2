/**
 * tls.mode passthrough cannot read an encrypted client's startup message, so rules on user, database,
 * application_name or replication (and per_user / per_database) would be skipped by every client that
 * encrypts. Such a config is refused at start (`--check`, exit 2) and on SIGHUP (the old config stays).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { runPsql } from "../support/clients.ts";
import { runPgrelay, spawnPgrelay } from "../support/pgrelay.ts";
import { startPostgres, type TlsPostgresCluster } from "../support/postgres.ts";
import { waitFor } from "../support/wait.ts";

describe("tls.mode passthrough refuses rules it cannot see", () => {
  let cluster: TlsPostgresCluster;
  let dir = "";
  before(async () => {
    cluster = await startPostgres({ ssl: true });
    dir = await mkdtemp(join(tmpdir(), "pgrelay-passthrough-"));
  });
  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("SIGHUP with a rule on user keeps the old config and logs the file, line and rule", async () => {
    const file = join(dir, "pgrelay.yaml");
    const config = (policy: string) =>
      `upstream: 127.0.0.1:${cluster.port}\ntls: { mode: passthrough }\n${policy}`;
    await writeFile(file, config(`policy:\n  rules:\n    - deny: { source: "192.0.2.0/24" }\n`));
    const proxy = await spawnPgrelay(["--config", file]);
    try {
      const blind = config(`policy:\n  rules:\n    - name: no-scram\n      deny: { user: scram_user }\n`);
      await writeFile(file, blind);
      const checked = await runPgrelay(["--config", file, "--check"]);
      assert.equal(checked.code, 2, checked.stdout);
      assert.match(
        checked.stderr,
        /pgrelay\.yaml:6: policy\.rules\[0\]\.deny\.user: rule "no-scram" depends on user, which tls\.mode passthrough cannot see/,
      );

      process.kill(proxy.pid, "SIGHUP");
      await waitFor(() => proxy.stderr().includes('"event":"config_reload_failed"'), "config_reload_failed");
      const failed = proxy.stderr().split("\n").find((line) =>
        line.includes('"event":"config_reload_failed"')
      )!;
      const event = JSON.parse(failed);
      assert.match(
        event.error,
        /pgrelay\.yaml:6: policy\.rules\[0\]\.deny\.user: rule "no-scram" depends on user, which tls\.mode passthrough cannot see/,
      );
      assert.equal(event.kept, "previous config");
      assert.doesNotMatch(proxy.stderr(), /"event":"config_reloaded"/);

      // The old config still rules: no rule on scram_user, so a plaintext and a TLS client both connect (with
      // the rejected rule loaded, the plaintext one would be denied while the TLS one would pass).
      const login = {
        host: "127.0.0.1",
        port: proxy.address.port,
        ...cluster.users.scram,
        database: "postgres",
      };
      for (const sslmode of ["disable", "require"]) {
        const result = await runPsql(["-Atc", "select ssl from pg_stat_ssl where pid = pg_backend_pid()"], {
          ...login,
          env: { PGSSLMODE: sslmode },
        });
        assert.equal(result.code, 0, `${sslmode}: ${result.stderr}`);
        assert.equal(result.stdout.trim(), sslmode === "require" ? "t" : "f");
      }
    } finally {
      assert.equal(await proxy.stop(), 0);
    }
  });
});
