/** The CLI's logger: one JSON object per line on stderr (journald-friendly), filtered by level. */
import { type LogFields, type Logger, type LogLevel, LOG_LEVELS } from "../core/logger.ts";

export class JsonLogger implements Logger {
  #minimum: number;
  readonly #write: (line: string) => void;
  readonly #base: LogFields;

  /** `base` fields start every line (e.g. the worker number). */
  constructor(level: LogLevel, write: (line: string) => void, base: LogFields = {}) {
    this.#minimum = LOG_LEVELS.indexOf(level);
    this.#write = write;
    this.#base = base;
  }

  set level(level: LogLevel) {
    this.#minimum = LOG_LEVELS.indexOf(level);
  }

  log(level: LogLevel, event: string, fields?: LogFields): void {
    if (LOG_LEVELS.indexOf(level) < this.#minimum) return;
    this.#write(JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields, ...this.#base }) + "\n");
  }
}
