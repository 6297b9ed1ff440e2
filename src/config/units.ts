/** Parsers for the human-friendly values of the config file: addresses, durations and sizes. */
import type { SocketAddress } from "../core/socket.ts";

/** "127.0.0.1:6432", "localhost:5432", "[::1]:5432"; a missing port is an error. */
export function parseAddress(text: string): SocketAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:\[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new RangeError(`expected HOST:PORT such as 127.0.0.1:6432 or [::1]:6432, got "${text}"`);
  }
  return { hostname: (match[1] ?? match[2])!, port };
}

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A number of seconds, or a string such as "500ms", "60s", "2m"; returns milliseconds. */
export function parseDuration(value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value * 1000;
  const match = typeof value === "string" ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value) : null;
  if (!match) throw new RangeError(`expected a duration such as "500ms", "60s" or "2m", got ${JSON.stringify(value)}`);
  return Number(match[1]) * DURATION_UNITS[match[2] as keyof typeof DURATION_UNITS];
}

const SIZE_UNITS = { B: 1, KB: 1000, KiB: 1024, MB: 1e6, MiB: 1024 ** 2, GB: 1e9, GiB: 1024 ** 3 } as const;

/** A number of bytes, or a string such as "64KiB", "10MB", "1GiB"; returns bytes. */
export function parseSize(value: unknown): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0) return value;
  const match = typeof value === "string" ? /^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)\s*$/.exec(value) : null;
  if (!match) throw new RangeError(`expected a size such as 65536, "64KiB", "10MB" or "1GiB", got ${JSON.stringify(value)}`);
  return Math.floor(Number(match[1]) * SIZE_UNITS[match[2] as keyof typeof SIZE_UNITS]);
}
