/**
 * `--workers N`: this process starts N copies of itself that share the listen port (SO_REUSEPORT), passes
 * signals on, restarts a worker that dies, serves the combined admin endpoints, and exits when all
 * workers have exited after SIGTERM/SIGINT. A CancelRequest that lands on another worker than the one
 * holding the session still works: the cancel key names the worker that issued it, and each worker listens
 * on a loopback port of its own (picked here, passed to all in CANCEL_PEERS_ENV) for CancelRequests handed
 * on by the others. Plain TCP between workers, no supervisor in the path: a cancel needs no round trip
 * through this process, and a worker that restarts listens on the same port again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import process from "node:process";
import { adapterFor } from "../adapters/runtime.ts";
import { createWorkersAdminHandler, type WorkerView } from "../admin/workers_admin_handler.ts";
import { requireBearerToken } from "../admin/bearer_guard.ts";
import { isLoopbackHost } from "../config/loopback.ts";
import type { Config } from "./config_schema.ts";
import { formatAddress } from "../frontend/frontend.ts";
import type { Listener, SocketAddress } from "../core/socket.ts";
import { cliArguments } from "./arguments.ts";
import type { JsonLogger } from "./json_logger.ts";
import { MOCK_SECRET_ENV, processMockSecretHex } from "./mock_secret.ts";
import { notifySystemd } from "./sd_notify.ts";
import { selfCommand } from "./self_command.ts";

/** Set in a worker's environment: its number, 1 to N. */
export const WORKER_ENV = "PGRELAY_WORKER_ID";
/** Set in a worker's environment: every worker's loopback cancel listener, `HOST:PORT` by worker number, comma-separated. */
export const CANCEL_PEERS_ENV = "PGRELAY_CANCEL_PEERS";

/** Every worker's cancel listener from CANCEL_PEERS_ENV: worker number (1 to N) to address. */
export function cancelPeersOf(value: string | undefined): Map<number, SocketAddress> | undefined {
  if (!value) return undefined;
  const peers = new Map<number, SocketAddress>();
  value.split(",").forEach((entry, i) => {
    const colon = entry.lastIndexOf(":");
    peers.set(i + 1, { hostname: entry.slice(0, colon), port: Number(entry.slice(colon + 1)) });
  });
  return peers;
}

const RESTART_DELAY_MS = 1000;

interface Worker extends WorkerView {
  id: number;
  admin: SocketAddress | undefined;
  alive: boolean;
  listening: boolean;
  child: ChildProcess;
}

export interface SupervisorAdmin {
  /** The admin API's bearer token (admin.token_file), checked here and by every worker. */
  token: string | undefined;
  /** Reads the token again (SIGHUP). */
  reloadToken: () => Promise<string | undefined>;
}

export async function superviseWorkers(config: Config, logger: JsonLogger, adminAuth: SupervisorAdmin): Promise<number> {
  let adminToken = adminAuth.token;
  const adapter = adapterFor();
  const listen = config.listen.port === 0 ? await pickPort(config.listen) : config.listen;
  const cancelPeers: string[] = [];
  for (let id = 1; id <= config.workers; id++) {
    cancelPeers.push(formatAddress(await pickPort({ hostname: "127.0.0.1", port: 0 })));
  }
  const workers: Worker[] = [];
  let stopping = false;
  let ready = false;
  let admin: Listener | undefined;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => finish = resolve);

  const start = (id: number): Worker => {
    const args = [...cliArguments(), "--listen", formatAddress(listen), ...(config.adminListen ? ["--admin", "127.0.0.1:0"] : [])];
    const [command, argv] = selfCommand(args);
    const child = spawn(command, argv, { stdio: ["ignore", "inherit", "pipe"], env: { ...process.env, [WORKER_ENV]: String(id), [MOCK_SECRET_ENV]: processMockSecretHex(), [CANCEL_PEERS_ENV]: cancelPeers.join(",") } });
    const worker: Worker = { id, admin: undefined, alive: true, listening: false, child };
    let pending = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => {
      process.stderr.write(text);
      pending += text;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        watchLine(worker, pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
    });
    child.on("exit", (code, signal) => {
      worker.alive = false;
      worker.admin = undefined;
      if (stopping) {
        if (workers.every((w) => !w.alive)) finish(0);
        return;
      }
      logger.log("error", "worker_exited", { worker: id, code, signal, restart_in_ms: RESTART_DELAY_MS });
      setTimeout(() => {
        if (!stopping) workers[id - 1] = start(id);
      }, RESTART_DELAY_MS);
    });
    return worker;
  };

  const watchLine = (worker: Worker, line: string) => {
    if (line.includes('"event":"listening"')) {
      worker.listening = true;
      if (!ready && workers.length === config.workers && workers.every((w) => w.listening)) {
        ready = true;
        logger.log("info", "listening", { listen: formatAddress(listen), upstream: formatAddress(config.upstream), workers: config.workers, runtime: adapter.name });
        void notifySystemd("READY=1");
      }
    }
    const adminMatch = /"event":"worker_admin_listening","admin":"([^"]+):(\d+)"/.exec(line);
    if (adminMatch) worker.admin = { hostname: adminMatch[1]!, port: Number(adminMatch[2]) };
  };

  const forward = (signal: NodeJS.Signals) => {
    for (const worker of workers) if (worker.alive && worker.child.pid !== undefined) process.kill(worker.child.pid, signal);
  };
  process.on("SIGHUP", () => {
    logger.log("info", "reload_workers", { workers: workers.length });
    forward("SIGHUP");
    adminAuth.reloadToken().then((token) => {
      if (token === undefined && config.adminListen && !isLoopbackHost(config.adminListen.hostname)) {
        throw new Error(`admin.token_file cannot be removed while the admin API listens on ${formatAddress(config.adminListen)}, which is not loopback`);
      }
      adminToken = token;
    }).catch((error: Error) => logger.log("error", "config_reload_failed", { error: error.message, kept: "previous admin token" }));
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      logger.log("info", "stopping_workers", { signal, again: stopping });
      if (!stopping) void notifySystemd("STOPPING=1");
      stopping = true;
      forward(signal);
      if (workers.every((w) => !w.alive)) finish(0);
    });
  }

  for (let id = 1; id <= config.workers; id++) workers.push(start(id));
  if (config.adminListen) {
    admin = await adapter.serveHttp(config.adminListen, requireBearerToken(createWorkersAdminHandler(() => workers), () => adminToken));
    logger.log("info", "admin_listening", {
      admin: formatAddress(admin.address),
      paths: ["/metrics", "/healthz", "/readyz", "/sessions"],
      workers: config.workers,
      token: adminToken !== undefined,
    });
  }
  const code = await finished;
  await admin?.close();
  return code;
}

/** A concrete free port for `listen` port 0, since every worker must bind the same one. */
async function pickPort(address: SocketAddress): Promise<SocketAddress> {
  const probe = await adapterFor().listen(address, (socket) => socket.destroy());
  const port = probe.address.port;
  await probe.close();
  return { hostname: address.hostname, port };
}
