/**
 * A route's `pool:` block (and the top-level `pool:` for the route that plain `upstream:` implies),
 * validated into {@link PoolSettings}; and the global `max_server_connections` per host.
 *
 * ```yaml
 * pool:
 *   mode: transaction        # session | transaction; absent block = no pooling
 *   size: 20                 # server connections per (host, database, user)
 *   min: 2                   # kept open while idle
 *   reserve: 5               # more, once a client has waited reserve_timeout
 *   reserve_timeout: 3s
 *   wait_timeout: 30s        # longest a client waits for a server connection
 *   max_waiting: 1000        # more waiting clients are refused at once
 *   idle_timeout: 10m        # close server connections idle this long, down to min (0: never)
 *   lifetime: 1h             # replace a server connection this old when it is next released (0: never)
 *   reset_query: DISCARD ALL # session mode: run when a client leaves ("" for none)
 *   on_pin: pin              # transaction mode: pin | error
 * ```
 */
import { SettingError, SettingErrors } from "../config/config_error.ts";
import { parseDuration } from "../config/units.ts";

export const POOL_MODES = ["session", "transaction"] as const;
export type PoolMode = typeof POOL_MODES[number];

export const ON_PIN_ACTIONS = ["pin", "error"] as const;
export type OnPin = typeof ON_PIN_ACTIONS[number];

export interface PoolSettings {
  readonly mode: PoolMode;
  /** Server connections per (host, database, user). */
  readonly size: number;
  /** Kept open while idle. */
  readonly min: number;
  /** Extra connections, opened once a client has waited reserveTimeoutMs. */
  readonly reserve: number;
  readonly reserveTimeoutMs: number;
  /** Longest a client waits for a server connection before ERROR 53300. */
  readonly waitTimeoutMs: number;
  /** Clients waiting beyond this many are refused at once with 53300. */
  readonly maxWaiting: number;
  /** Idle server connections older than this are closed, down to min; 0: never. */
  readonly idleTimeoutMs: number;
  /** Server connections older than this are replaced when next released; 0: never. */
  readonly lifetimeMs: number;
  /** Session mode: the query run when a client leaves; undefined in transaction mode or when "" is set. */
  readonly resetQuery: string | undefined;
  /** Transaction mode: what session-level state does (pin the client to its server, or ERROR 0A000). */
  readonly onPin: OnPin;
}

/** The defaults where the block is silent (mode and size have none: they must be given). */
export const POOL_DEFAULTS = {
  min: 0,
  reserve: 0,
  reserveTimeoutMs: 5_000,
  waitTimeoutMs: 30_000,
  maxWaiting: 1000,
  idleTimeoutMs: 600_000,
  lifetimeMs: 3_600_000,
  resetQuery: "DISCARD ALL",
  onPin: "pin",
} as const;

export const POOL_KEYS = [
  "mode",
  "size",
  "min",
  "reserve",
  "reserve_timeout",
  "wait_timeout",
  "max_waiting",
  "idle_timeout",
  "lifetime",
  "reset_query",
  "on_pin",
] as const;

/** Connections a pool may ever open; a bound on size + reserve that keeps typos (size: 20000) out. */
export const MAX_POOL_SIZE = 10_000;

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Validates one `pool:` block. `path` leads to it (for a route: `[index, "pool"]` under `routes`; for the
 * top-level block: `[]`). Throws SettingErrors naming every bad key.
 */
export function parsePool(raw: unknown, path: readonly (string | number)[] = []): PoolSettings {
  if (!isMapping(raw)) {
    throw new SettingError(path, "expected a mapping such as { mode: transaction, size: 20 }");
  }
  const bad: SettingError[] = [];
  const at = (key: string, parse: () => void) => {
    try {
      parse();
    } catch (error) {
      if (error instanceof SettingError) bad.push(error);
      else if (error instanceof RangeError || error instanceof TypeError) {
        bad.push(new SettingError([...path, key], error.message));
      } else throw error;
    }
  };
  let mode: PoolMode | undefined;
  let size: number | undefined;
  let min: number = POOL_DEFAULTS.min;
  let reserve: number = POOL_DEFAULTS.reserve;
  let reserveTimeoutMs: number = POOL_DEFAULTS.reserveTimeoutMs;
  let waitTimeoutMs: number = POOL_DEFAULTS.waitTimeoutMs;
  let maxWaiting: number = POOL_DEFAULTS.maxWaiting;
  let idleTimeoutMs: number = POOL_DEFAULTS.idleTimeoutMs;
  let lifetimeMs: number = POOL_DEFAULTS.lifetimeMs;
  let resetQuery: string | undefined;
  let onPin: OnPin | undefined;
  for (const [key, value] of Object.entries(raw)) {
    at(key, () => {
      switch (key as typeof POOL_KEYS[number]) {
        case "mode":
          mode = oneOf(value, POOL_MODES);
          break;
        case "size":
          size = whole(value, 1, MAX_POOL_SIZE);
          break;
        case "min":
          min = whole(value, 0, MAX_POOL_SIZE);
          break;
        case "reserve":
          reserve = whole(value, 0, MAX_POOL_SIZE);
          break;
        case "max_waiting":
          maxWaiting = whole(value, 0, 1_000_000);
          break;
        case "reserve_timeout":
          reserveTimeoutMs = parseDuration(value);
          break;
        case "wait_timeout":
          waitTimeoutMs = parseDuration(value);
          if (waitTimeoutMs <= 0) throw new RangeError("must be more than 0 (clients must not wait forever)");
          break;
        case "idle_timeout":
          idleTimeoutMs = parseDuration(value);
          break;
        case "lifetime":
          lifetimeMs = parseDuration(value);
          break;
        case "reset_query":
          if (typeof value !== "string") {
            throw new TypeError(
              `expected SQL such as "DISCARD ALL" ("" for none), got ${JSON.stringify(value)}`,
            );
          }
          resetQuery = value;
          break;
        case "on_pin":
          onPin = oneOf(value, ON_PIN_ACTIONS);
          break;
        default:
          throw new SettingError([...path, key], `unknown key (known keys: ${POOL_KEYS.join(", ")})`);
      }
    });
  }
  if (mode === undefined && !bad.some((error) => error.path[path.length] === "mode")) {
    bad.push(new SettingError(path, `a pool needs mode: (${POOL_MODES.join(" or ")})`));
  }
  if (size === undefined && !bad.some((error) => error.path[path.length] === "size")) {
    bad.push(
      new SettingError(
        path,
        "a pool needs size: (server connections per host, database and user), such as size: 20",
      ),
    );
  }
  if (size !== undefined && min > size) {
    bad.push(new SettingError([...path, "min"], `must be at most size (${size}), got ${min}`));
  }
  if (size !== undefined && size + reserve > MAX_POOL_SIZE) {
    bad.push(new SettingError([...path, "reserve"], `size + reserve must be at most ${MAX_POOL_SIZE}`));
  }
  if (mode === "transaction" && resetQuery !== undefined) {
    bad.push(
      new SettingError(
        [...path, "reset_query"],
        "runs only in mode session (in mode transaction a server is released clean at each transaction's end)",
      ),
    );
  }
  if (mode === "session" && onPin !== undefined) {
    bad.push(
      new SettingError(
        [...path, "on_pin"],
        "applies only to mode transaction (in mode session a client keeps its server for the whole session)",
      ),
    );
  }
  if (bad.length > 0) throw new SettingErrors(bad);
  return {
    mode: mode!,
    size: size!,
    min,
    reserve,
    reserveTimeoutMs,
    waitTimeoutMs,
    maxWaiting,
    idleTimeoutMs,
    lifetimeMs,
    resetQuery: mode === "session" ? (resetQuery ?? POOL_DEFAULTS.resetQuery) || undefined : undefined,
    onPin: onPin ?? POOL_DEFAULTS.onPin,
  };
}

/** `max_server_connections`: server connections pgrelay opens to one host, over every pool (1 or more). */
export function parseMaxServerConnections(raw: unknown): number {
  return whole(raw, 1, 1_000_000);
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[]): T {
  if (typeof value !== "string" || !allowed.includes(value as T)) {
    throw new RangeError(`expected one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function whole(value: unknown, low: number, high: number): number {
  const number = typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof number !== "number" || !Number.isInteger(number) || number < low || number > high) {
    throw new RangeError(`expected a whole number from ${low} to ${high}, got ${JSON.stringify(value)}`);
  }
  return number;
}
