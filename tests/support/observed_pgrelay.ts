/**
 * A pgrelay process with most of what its metrics and status page show turned on, for the operator-kit
 * tests: a health-checked cluster of one real PostgreSQL (upstream TLS verified against the test CA), a
 * route, `limits.max_connections`, TLS termination with a certificate of its own, the audit log, and the
 * admin API with a bearer token.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type PgrelayProcess, spawnPgrelay } from "./pgrelay.ts";
import { startPostgres, type TlsPostgresCluster } from "./postgres.ts";

export interface ObservedPgrelay {
  readonly pg: TlsPostgresCluster;
  readonly relay: PgrelayProcess;
  readonly dir: string;
  readonly token: string;
  /** The files pgrelay was started with (tls.cert and tls.key are copies it may overwrite). */
  readonly files: { config: string; cert: string; key: string; ca: string };
  /** `http://HOST:PORT` of the admin API. */
  readonly adminUrl: string;
  /** GET on the admin API with the token. */
  get(path: string): Promise<Response>;
  stop(): Promise<void>;
}

export const MAX_CONNECTIONS = 50;

export async function startObservedPgrelay(): Promise<ObservedPgrelay> {
  const pg = await startPostgres({ ssl: true });
  const dir = await mkdtemp(join(tmpdir(), "pgrelay-observed-"));
  let relay: PgrelayProcess | undefined;
  try {
    const token = "observed-token-" + crypto.randomUUID();
    const files = { config: join(dir, "pgrelay.yaml"), cert: join(dir, "tls.crt"), key: join(dir, "tls.key"), ca: pg.pki.ca.certPath };
    await copyFile(pg.pki.proxy.certPath, files.cert);
    await copyFile(pg.pki.proxy.keyPath, files.key);
    const { user, password } = pg.users.superuser;
    await writeFile(join(dir, "userlist.txt"), `"${user}" "${password}"\n`, { mode: 0o600 });
    await writeFile(join(dir, "admin.token"), token + "\n", { mode: 0o600 });
    await writeFile(
      files.config,
      `
auth: { file: ${JSON.stringify(join(dir, "userlist.txt"))} }
admin: { listen: 127.0.0.1:0, token_file: ${JSON.stringify(join(dir, "admin.token"))} }
tls: { mode: terminate, cert: ${JSON.stringify(files.cert)}, key: ${JSON.stringify(files.key)} }
clusters:
  main:
    hosts: ["127.0.0.1:${pg.port}"]
    health: { interval: 300ms, timeout: 5s, user: ${user}, database: postgres }
    tls: { mode: verify-ca, ca: ${JSON.stringify(files.ca)} }
routes:
  - { name: default, cluster: main, target: primary }
limits: { max_connections: ${MAX_CONNECTIONS} }
audit: { path: ${JSON.stringify(join(dir, "audit.jsonl"))} }
`,
      { mode: 0o600 },
    );
    relay = await spawnPgrelay(["--config", files.config, "--admin", "127.0.0.1:0"]);
    const adminUrl = `http://${relay.admin!.hostname}:${relay.admin!.port}`;
    const running = relay;
    return {
      pg,
      relay,
      dir,
      token,
      files,
      adminUrl,
      get: (path) => fetch(adminUrl + path, { headers: { authorization: `Bearer ${token}` } }),
      async stop() {
        await running.stop("SIGKILL");
        await pg.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await relay?.stop("SIGKILL");
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
