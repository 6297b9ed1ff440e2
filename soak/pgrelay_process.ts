/** One pgrelay process on a given runtime, started from a config file, with its JSON log counted. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { trackChild } from "./cleanup.ts";
import { HOST, type Runtime } from "./settings.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MOD = join(ROOT, "mod.ts");
const BIN: Record<Runtime, string> = {
  deno: join(ROOT, "node_modules/.bin/deno"),
  bun: join(ROOT, "node_modules/.bin/bun"),
};
/** Lines of pgrelay's log kept verbatim: the first error and non-JSON lines, and the last lines. */
const KEPT_PROBLEM_LINES = 30;
const KEPT_TAIL_LINES = 40;

export interface OpenSession {
  /** The client's address as pgrelay logged it, "127.0.0.1:PORT". */
  client: string;
  /** When pgrelay logged the session's start (ms since the epoch). */
  startedAt: number;
  /** From session_ready, once the client logged in. */
  applicationName?: string;
  /** The session's first log lines (a few), to show what happened to a session that never ended. */
  lines: string[];
}

const KEPT_LINES_PER_SESSION = 6;

export interface PgrelayProcess {
  readonly runtime: Runtime;
  readonly pid: number;
  readonly port: number;
  readonly adminPort: number;
  /**
   * Sessions pgrelay started (debug session_start) and has not ended: session id → client address, and
   * the application_name once session_ready named it.
   */
  readonly openSessions: Map<string, OpenSession>;
  /** Count of log lines per "level event", e.g. "info config_reloaded". */
  readonly events: Map<string, number>;
  /**
   * The first error-level lines and lines that are not JSON (a crash, a runtime warning). Warnings are only
   * counted: the malformed clients cause them by the hundred.
   */
  readonly problemLines: string[];
  readonly tail: string[];
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<void>;
  count(event: string): number;
  signal(signal: NodeJS.Signals): void;
}

/** Spawns `deno run -A mod.ts` or `bun mod.ts` with `--config FILE --listen 127.0.0.1:0`. */
export function startPgrelay(
  runtime: Runtime,
  configPath: string,
  timeoutMs = 60_000,
): Promise<PgrelayProcess> {
  const args = [MOD, "--config", configPath, "--listen", `${HOST}:0`];
  const child = trackChild(
    spawn(BIN[runtime], runtime === "deno" ? ["run", "-A", ...args] : args, { stdio: ["ignore", "pipe", "pipe"] }),
  );
  const events = new Map<string, number>();
  const openSessions = new Map<string, OpenSession>();
  const problemLines: string[] = [];
  const tail: string[] = [];
  let port = 0;
  let adminPort = 0;
  let partial = "";
  let onReady: (() => void) | undefined;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const handleLine = (line: string): void => {
    if (line === "") return;
    tail.push(line);
    if (tail.length > KEPT_TAIL_LINES) tail.shift();
    const match = /^\{"ts":"[^"]*","level":"(\w+)","event":"([^"]+)"/.exec(line);
    if (match === null) {
      if (problemLines.length < KEPT_PROBLEM_LINES) problemLines.push(line);
      return;
    }
    const key = `${match[1]} ${match[2]}`;
    events.set(key, (events.get(key) ?? 0) + 1);
    if (match[1] === "error" && problemLines.length < KEPT_PROBLEM_LINES) {
      problemLines.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
    }
    if (match[2] === "session_start") {
      const session = /"session":"([^"]+)","client":"([^"]+)"/.exec(line);
      const ts = Date.parse(/^\{"ts":"([^"]*)"/.exec(line)?.[1] ?? "");
      if (session !== null) openSessions.set(session[1]!, { client: session[2]!, startedAt: ts, lines: [] });
    } else if (match[2] === "session_ready") {
      const id = /"session":"([^"]+)"/.exec(line)?.[1];
      const open = id === undefined ? undefined : openSessions.get(id);
      const name = /"application_name":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
      if (open !== undefined && name !== undefined) open.applicationName = name;
    } else if (match[2] === "session_end") {
      const session = /"session":"([^"]+)"/.exec(line);
      if (session !== null) openSessions.delete(session[1]!);
    }
    const sessionId = /^[^}]*?"session":"([^"]+)"/.exec(line)?.[1];
    if (sessionId !== undefined) {
      const lines = openSessions.get(sessionId)?.lines;
      if (lines !== undefined && lines.length < KEPT_LINES_PER_SESSION) lines.push(line);
    }
    if (match[2] === "listening") port = Number(/"listen":"[^"]*:(\d+)"/.exec(line)?.[1] ?? 0);
    if (match[2] === "admin_listening") adminPort = Number(/"admin":"[^"]*:(\d+)"/.exec(line)?.[1] ?? 0);
    if (port > 0 && adminPort > 0) onReady?.();
  };
  const onData = (text: string): void => {
    partial += text;
    let newline = partial.indexOf("\n");
    while (newline >= 0) {
      handleLine(partial.slice(0, newline));
      partial = partial.slice(newline + 1);
      newline = partial.indexOf("\n");
    }
  };
  child.stderr!.setEncoding("utf8").on("data", onData);
  child.stdout!.setEncoding("utf8").on("data", onData);

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`pgrelay (${runtime}) did not report its addresses within ${timeoutMs} ms:\n${tail.join("\n")}`));
    }, timeoutMs);
    const proc: PgrelayProcess = {
      runtime,
      pid: child.pid ?? 0,
      get port() {
        return port;
      },
      get adminPort() {
        return adminPort;
      },
      events,
      openSessions,
      problemLines,
      tail,
      exit: undefined,
      exited,
      count: (event: string) => {
        let n = 0;
        for (const [key, value] of events) if (key.endsWith(` ${event}`)) n += value;
        return n;
      },
      signal(signal: NodeJS.Signals) {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, signal);
      },
    };
    child.once("exit", (code, signal) => {
      proc.exit = { code, signal };
      clearTimeout(timer);
      reject(new Error(`pgrelay (${runtime}) exited (code ${code}, signal ${signal}) before listening:\n${tail.join("\n")}`));
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    onReady = () => {
      onReady = undefined;
      clearTimeout(timer);
      resolve(proc);
    };
  });
}
