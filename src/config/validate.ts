/**
 * Turns raw values (from YAML and from flags) into a Config, collecting every problem instead of stopping
 * at the first, so `--check` shows them all.
 */
import { LOG_LEVELS, type LogLevel } from "../core/logger.ts";
import { MAX_STARTUP_PACKET_BYTES } from "../protocol/limits.ts";
import { parseAudit } from "../audit/audit_schema.ts";
import { parseLimits } from "../limits/limits_schema.ts";
import { parsePolicy } from "../policy/policy_schema.ts";
import { type ConfigIssue, formatPath, SettingError, SettingErrors } from "./config_error.ts";
import { type Config, CONFIG_KEYS, type ConfigKey, DEFAULT_CONFIG } from "./schema.ts";
import { parseAddress, parseDuration, parseSize } from "./units.ts";

/** One layer of raw settings: the config file or the command line. */
export interface RawLayer {
  values: Partial<Record<string, unknown>>;
  /** A file name, or undefined for flags (the issue then names the flag). */
  source?: string;
  lineOf?: (key: string) => number | undefined;
  /** The line of a nested value, such as ["policy", "rules", 2]. */
  lineAt?: (path: readonly (string | number)[]) => number | undefined;
}

const SETTERS: { [K in ConfigKey]: (config: Config, value: unknown) => void } = {
  listen: (config, value) => config.listen = parseAddress(asString(value)),
  upstream: (config, value) => config.upstream = parseAddress(asString(value)),
  startup_timeout: (config, value) => config.startupTimeoutMs = positive(parseDuration(value)),
  connect_timeout: (config, value) => config.connectTimeoutMs = positive(parseDuration(value)),
  max_message_size: (config, value) => {
    const bytes = parseSize(value);
    if (bytes < MAX_STARTUP_PACKET_BYTES) throw new RangeError(`must be at least ${MAX_STARTUP_PACKET_BYTES} bytes`);
    config.maxMessageBytes = bytes;
  },
  log_level: (config, value) => {
    if (!LOG_LEVELS.includes(value as LogLevel)) {
      throw new RangeError(`expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(value)}`);
    }
    config.logLevel = value as LogLevel;
  },
  admin: (config, value) => {
    // The --admin flag gives the address alone; the file gives a mapping.
    if (typeof value === "string") {
      config.adminListen = parseAddress(value);
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TypeError('expected a mapping such as { listen: "127.0.0.1:9187" }');
    }
    for (const [key, entry] of Object.entries(value)) {
      if (key !== "listen") throw new RangeError(`unknown key admin.${key} (known keys: admin.listen)`);
      config.adminListen = parseAddress(asString(entry));
    }
  },
  drain_timeout: (config, value) => config.drainTimeoutMs = parseDuration(value),
  policy: (config, value) => config.policy = parsePolicy(value),
  limits: (config, value) => config.limits = parseLimits(value),
  audit: (config, value) => config.audit = parseAudit(value),
};

/** Applies the layers in order over the defaults; returns the config and the issues found. */
export function buildConfig(layers: readonly RawLayer[]): { config: Config; issues: ConfigIssue[] } {
  const config: Config = structuredClone(DEFAULT_CONFIG);
  const issues: ConfigIssue[] = [];
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer.values)) {
      if (value === undefined) continue;
      const where = whereOf(layer, key);
      if (!(key in CONFIG_KEYS)) {
        issues.push({ key, message: `unknown key (known keys: ${Object.keys(CONFIG_KEYS).join(", ")})`, ...where });
        continue;
      }
      try {
        SETTERS[key as ConfigKey](config, value);
      } catch (error) {
        const nested = error instanceof SettingErrors ? error.errors : error instanceof SettingError ? [error] : [];
        if (nested.length > 0 && layer.source !== undefined) {
          for (const one of nested) {
            const line = layer.lineAt?.([key, ...one.path]) ?? where.line;
            const issue: ConfigIssue = { key: formatPath(key, one.path), message: one.message, source: layer.source };
            if (line !== undefined) issue.line = line;
            issues.push(issue);
          }
          continue;
        }
        issues.push({ key: layer.source === undefined ? `--${key.replaceAll("_", "-")}` : key, message: (error as Error).message, ...where });
      }
    }
  }
  return { config, issues };
}

function whereOf(layer: RawLayer, key: string): { source?: string; line?: number } {
  if (layer.source === undefined) return {};
  const line = layer.lineOf?.(key);
  return line === undefined ? { source: layer.source } : { source: layer.source, line };
}

function asString(value: unknown): string {
  if (typeof value !== "string") throw new TypeError(`expected a string such as "127.0.0.1:5432", got ${JSON.stringify(value)}`);
  return value;
}

function positive(ms: number): number {
  if (ms <= 0) throw new RangeError("must be greater than zero");
  return ms;
}
