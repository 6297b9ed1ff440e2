/**
 * A primary and a streaming standby on one machine: the standby is a base backup of the primary
 * (`pg_basebackup -R` with a replication slot when Debian's pg_basebackup can stream from the server's
 * version; otherwise the same thing by hand with `pg_backup_start()`/`pg_backup_stop()`: PostgreSQL 18
 * from npm ships no pg_basebackup and Debian's 15 refuses newer servers).
 *
 * Failover scenarios use the clusters' own controls: `standby.promote()`, `primary.stopImmediate()`,
 * `primary.sigstop()`/`sigcont()` (a host that stops answering), and `primary.start()` after a promotion
 * (the old primary comes back without standby.signal: two primaries, the promoted one on a higher timeline).
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pgInstall } from "./pg_bin.ts";
import { asPostgres, chownToPostgres } from "./pg_os_user.ts";
import {
  clientToolEnv,
  launchCluster,
  type PostgresCluster,
  startPostgres,
  type StartPostgresOptions,
} from "./postgres.ts";
import { runChecked } from "./process.ts";
import { dataRowValues, errorFields, RawClient } from "./raw_client.ts";
import { sleep } from "./wait.ts";

/** The standby's replication slot on the primary (and its `application_name` in pg_stat_replication). */
export const STANDBY_SLOT = "pgrelay_standby";

/** A primary and its streaming standby; both are ordinary test clusters (promote, stopImmediate, sigstop...). */
export interface ReplicatedPair {
  readonly primary: PostgresCluster;
  readonly standby: PostgresCluster;
  /**
   * Resolves once the standby has replayed everything the primary had written when called
   * (`pg_current_wal_insert_lsn()` on the primary against `pg_last_wal_replay_lsn()` on the standby).
   */
  waitForReplay(timeoutMs?: number): Promise<void>;
  /** Stops and removes both clusters. Idempotent. */
  stop(): Promise<void>;
}

/** Options for both clusters (`ssl`, `hba`, `conf`, `version`); the standby gets the same. */
export type ReplicatedPairOptions = StartPostgresOptions;

/** Starts a primary, takes a base backup with a replication slot and starts it as a streaming standby. */
export async function startReplicatedPair(opts: ReplicatedPairOptions = {}): Promise<ReplicatedPair> {
  const primary = await startPostgres(opts);
  try {
    const install = pgInstall(opts.version);
    const backup = install.clientVersion >= primary.version ? pgBasebackup : manualBaseBackup;
    const standby = await launchCluster({
      install,
      pki: primary.pki,
      conf: opts.conf ?? {},
      createRoles: false,
      populate: (dataDir) => backup(primary, dataDir),
    });
    const pair = new Pair(primary, standby);
    await pair.waitForStreaming();
    return pair;
  } catch (err) {
    await primary.stop();
    throw err;
  }
}

class Pair implements ReplicatedPair {
  readonly primary: PostgresCluster;
  readonly standby: PostgresCluster;

  constructor(primary: PostgresCluster, standby: PostgresCluster) {
    this.primary = primary;
    this.standby = standby;
  }

  async waitForReplay(timeoutMs = 30_000): Promise<void> {
    // The insert position, not pg_current_wal_lsn(): with synchronous_commit off a commit may not be written yet.
    const target = await this.primary.sql("select pg_current_wal_insert_lsn()");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const done = await this.standby.sql(
        `select coalesce(pg_last_wal_replay_lsn() >= '${target}'::pg_lsn, false)`,
      );
      if (done === "t") return;
      if (Date.now() > deadline) {
        throw new Error(
          `standby did not replay up to ${target} within ${timeoutMs} ms\n${this.standby.logTail()}`,
        );
      }
      await sleep(25);
    }
  }

  /** Waits until the primary shows the standby streaming (so a write is shipped at once). */
  async waitForStreaming(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = await this.primary.sql(
        `select state from pg_stat_replication where application_name = '${STANDBY_SLOT}'`,
      );
      if (state === "streaming") return;
      if (Date.now() > deadline) {
        throw new Error(
          `standby not streaming after ${timeoutMs} ms (state ${state || "none"})\n${this.standby.logTail()}`,
        );
      }
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.standby.stop(), this.primary.stop()]);
  }
}

/** The connection string the standby streams with: the primary's Unix socket, `local replication all trust`. */
function primaryConninfo(primary: PostgresCluster): string {
  return `host=${primary.socketDir} port=${primary.port} user=postgres application_name=${STANDBY_SLOT}`;
}

/** `pg_basebackup -R -C -S <slot>` into `dataDir` (runs as `postgres` so the files are its own). */
async function pgBasebackup(primary: PostgresCluster, dataDir: string): Promise<void> {
  const [cmd, args] = asPostgres(join(primary.clientBinDir, "pg_basebackup"), [
    "-d",
    primaryConninfo(primary),
    "-D",
    dataDir,
    "-R",
    "-C",
    "-S",
    STANDBY_SLOT,
    "-X",
    "stream",
    "--checkpoint=fast",
    "--no-sync",
  ]);
  await runChecked(cmd, args, {
    cwd: join(dataDir, ".."),
    env: clientToolEnv(primary.libDir),
    timeoutMs: 120_000,
  });
}

/** What pg_basebackup leaves out of a base backup (the directories are created empty). */
const SKIPPED_FILES = new Set(["postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map"]);
const EMPTIED_DIRS = [
  "pg_wal",
  "pg_replslot",
  "pg_stat_tmp",
  "pg_dynshmem",
  "pg_notify",
  "pg_serial",
  "pg_snapshots",
  "pg_subtrans",
];

/**
 * A base backup by hand with the low-level API, then what `-R` adds: a slot reserved before the backup,
 * `pg_backup_start()` in one session, a copy of the data directory, `pg_backup_stop()`'s label as
 * `backup_label`, `standby.signal` and `primary_conninfo`/`primary_slot_name` in postgresql.auto.conf.
 */
async function manualBaseBackup(primary: PostgresCluster, dataDir: string): Promise<void> {
  await primary.sql(`select pg_create_physical_replication_slot('${STANDBY_SLOT}', true)`);
  const session = await RawClient.connect(primary.host, primary.port);
  try {
    session.startup({ user: primary.users.superuser.user, database: "postgres" });
    await session.authenticate(primary.users.superuser.password);
    await queryValues(session, "select pg_backup_start('pgrelay standby', true)");
    await copyDataDir(primary.dataDir, dataDir);
    const [label] = await queryValues(session, "select labelfile from pg_backup_stop(false)");
    if (label === null || label === undefined) throw new Error("pg_backup_stop returned no backup label");
    await writeOwned(join(dataDir, "backup_label"), label);
    session.terminate();
  } finally {
    await session.close();
  }
  await writeOwned(join(dataDir, "standby.signal"), "");
  const auto = await readFile(join(dataDir, "postgresql.auto.conf"), "utf8");
  await writeOwned(
    join(dataDir, "postgresql.auto.conf"),
    `${auto}primary_conninfo = '${primaryConninfo(primary)}'\nprimary_slot_name = '${STANDBY_SLOT}'\n`,
  );
}

/** Copies `from` to `to` entry by entry (cp -a keeps the postgres ownership), leaving out runtime state. */
async function copyDataDir(from: string, to: string): Promise<void> {
  await runChecked("mkdir", ["-m", "0700", to]);
  await chownToPostgres(to);
  const entries = (await readdir(from)).filter((name) =>
    !SKIPPED_FILES.has(name) && !EMPTIED_DIRS.includes(name)
  );
  await runChecked("cp", ["-a", ...entries.map((name) => join(from, name)), to]);
  for (const dir of [...EMPTIED_DIRS, "pg_wal/archive_status", "pg_wal/summaries"]) {
    const path = join(to, dir);
    await mkdir(path, { mode: 0o700, recursive: true });
    await chownToPostgres(path);
  }
}

async function writeOwned(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  await chownToPostgres(path);
}

/** Runs one simple query and returns the first row's values (throws on ErrorResponse). */
async function queryValues(session: RawClient, sql: string): Promise<(string | null)[]> {
  session.query(sql);
  const messages = await session.readUntilReady();
  const error = messages.find((m) => m.type === "E");
  if (error !== undefined) throw new Error(`${sql}: ${JSON.stringify(errorFields(error.body))}`);
  const row = messages.find((m) => m.type === "D");
  return row === undefined ? [] : dataRowValues(row.body);
}
