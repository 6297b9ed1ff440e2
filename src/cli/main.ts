/** The command line: parse flags, load the config, run the proxy until a signal says stop. */
import process from "node:process";
import { ConfigError } from "../config/config_error.ts";
import type { Config } from "../config/schema.ts";
import { Proxy } from "../core/proxy.ts";
import { formatAddress } from "../core/session.ts";
import { adapterFor } from "../adapters/runtime.ts";
import { type CliArgs, HELP, parseCliArgs } from "./args.ts";
import { JsonLogger } from "./json_logger.ts";
import { loadConfig } from "./load_config.ts";
import { VERSION } from "./version.ts";

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

const print = (text: string) => process.stdout.write(text + "\n");
const complain = (text: string) => process.stderr.write(text + "\n");

/** Runs pgrelay with these arguments; resolves with the exit code once it should exit. */
export async function main(argv: readonly string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (error) {
    complain(`pgrelay: ${(error as Error).message}\nRun "pgrelay --help" for usage.`);
    return EXIT.USAGE;
  }
  if (args.help) {
    print(HELP);
    return EXIT.OK;
  }
  if (args.version) {
    print(`pgrelay ${VERSION}`);
    return EXIT.OK;
  }
  let config: Config;
  try {
    config = await loadConfig(args.config, args.overrides);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.message.split("\n")) complain(`pgrelay: ${line}`);
    return EXIT.USAGE;
  }
  if (args.check) {
    print(`pgrelay: config OK: listen ${formatAddress(config.listen)}, upstream ${formatAddress(config.upstream)}`);
    return EXIT.OK;
  }
  return await serve(config, args);
}

async function serve(config: Config, args: CliArgs): Promise<number> {
  const logger = new JsonLogger(config.logLevel, (line) => process.stderr.write(line));
  // Signals are wired before the proxy reports that it listens, so a supervisor may signal at once.
  let proxy: Proxy | undefined;
  let stopping = false;
  let exit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => exit = resolve);
  const stop = (signal: string) => {
    if (stopping) {
      logger.log("warn", "exit_now", { signal });
      exit(EXIT.OK);
      return;
    }
    stopping = true;
    logger.log("info", "shutting_down", { signal, sessions: proxy?.sessions.length ?? 0 });
    if (!proxy) return; // start() finishes, then sees `stopping`
    void proxy.close().then(() => waitForSessions(proxy!, 5000)).then(() => exit(EXIT.OK));
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGHUP", () => {
    if (!proxy) return;
    const running = proxy;
    loadConfig(args.config, args.overrides).then((next) => {
      if (formatAddress(next.listen) !== formatAddress(config.listen)) {
        logger.log("warn", "reload_listen_ignored", { listen: formatAddress(next.listen), reason: "changing listen needs a restart" });
      }
      running.reconfigure(next);
      logger.level = next.logLevel;
      logger.log("info", "config_reloaded", { upstream: formatAddress(next.upstream) });
    }, (error: Error) => logger.log("error", "config_reload_failed", { error: error.message, kept: "previous config" }));
  });
  try {
    proxy = await Proxy.start(adapterFor(), { ...config, logger });
  } catch (error) {
    complain(`pgrelay: cannot listen on ${formatAddress(config.listen)}: ${(error as Error).message}`);
    return EXIT.FAILURE;
  }
  if (stopping) {
    await proxy.close();
    return EXIT.OK;
  }
  return await exited;
}

async function waitForSessions(proxy: Proxy, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (proxy.sessions.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
