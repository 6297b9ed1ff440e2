/**
 * `make demo`: a throwaway PostgreSQL with pgrelay in front of it. Prints the psql command that connects
 * through pgrelay; Ctrl-C stops both and removes the data directory.
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { freePort } from "../tests/support/free_port.ts";
import { startPostgres } from "../tests/support/postgres.ts";

const cluster = await startPostgres();
const port = await freePort().catch(() => 0);
const mod = fileURLToPath(new URL("../mod.ts", import.meta.url));
const proxy = spawn(process.execPath, [mod, "--listen", `127.0.0.1:${port}`, "--upstream", `127.0.0.1:${cluster.port}`], {
  stdio: ["ignore", "inherit", "inherit"],
});
const { user, password } = cluster.users.scram;
process.stdout.write(`
pgrelay is listening on 127.0.0.1:${port} in front of a throwaway PostgreSQL ${cluster.version} on port ${cluster.port}.
Connect through it with:

  PGPASSWORD=${password} psql "host=127.0.0.1 port=${port} user=${user} dbname=app"

Other roles: md5_user/md5-pass-1 (md5), plain_user/plain-pass-1 (cleartext), trust_user (trust).
Session logs appear below as JSON lines. Press Ctrl-C to stop.

`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  proxy.kill("SIGTERM");
  await cluster.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
proxy.on("exit", (code) => {
  if (!stopping) {
    process.stderr.write(`pgrelay exited unexpectedly (code ${code})\n`);
    void stop();
  }
});
