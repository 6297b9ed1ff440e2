/** The core never prints: it reports through this interface, which the CLI maps onto JSON lines. */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];
export type LogFields = Record<string, unknown>;

export interface Logger {
  log(level: LogLevel, event: string, fields?: LogFields): void;
}

/** A logger that drops everything (library use, tests). */
export const SILENT_LOGGER: Logger = { log() {} };
