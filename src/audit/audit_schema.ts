/**
 * The `audit:` section.
 *
 * ```yaml
 * audit: { path: /var/log/pgrelay/audit.jsonl, queries: true, max_query_length: 4096, redact_literals: false }
 * ```
 * `path: "-"` writes to stdout. The file is opened for appending and reopened on SIGHUP (logrotate).
 */
import { SettingError } from "../config/config_error.ts";

export interface AuditSettings {
  /** A file to append JSON lines to, or "-" for stdout. */
  path: string;
  /** Log `query` events (captures Q, P, B, E, C and S bodies from the client); off: sessions only. */
  queries: boolean;
  /** Query text longer than this many characters is cut (and marked `text_truncated`). */
  maxQueryLength: number;
  /** Mask string and number literals in query text. */
  redactLiterals: boolean;
}

export const AUDIT_KEYS = {
  path: 'file to append JSON lines to, or "-" for stdout',
  queries: "true to log every query (default true)",
  max_query_length: "characters of query text kept (default 4096)",
  redact_literals: "true to mask string and number literals in query text (default false)",
} as const;

export function parseAudit(raw: unknown): AuditSettings {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SettingError(
      [],
      'expected a mapping such as { path: "/var/log/pgrelay/audit.jsonl", queries: true }',
    );
  }
  const settings: AuditSettings = { path: "", queries: true, maxQueryLength: 4096, redactLiterals: false };
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    switch (key) {
      case "path":
        if (typeof value !== "string" || value === "") {
          throw new SettingError([key], `expected a file path or "-", got ${JSON.stringify(value)}`);
        }
        settings.path = value;
        break;
      case "queries":
      case "redact_literals":
        if (typeof value !== "boolean") {
          throw new SettingError([key], `expected true or false, got ${JSON.stringify(value)}`);
        }
        if (key === "queries") settings.queries = value;
        else settings.redactLiterals = value;
        break;
      case "max_query_length":
        if (typeof value !== "number" || !Number.isInteger(value) || value < 16 || value > 65536) {
          throw new SettingError(
            [key],
            `expected a whole number from 16 to 65536, got ${JSON.stringify(value)}`,
          );
        }
        settings.maxQueryLength = value;
        break;
      default:
        throw new SettingError([key], `unknown key (known keys: ${Object.keys(AUDIT_KEYS).join(", ")})`);
    }
  }
  if (settings.path === "") throw new SettingError([], 'audit needs path: (a file, or "-" for stdout)');
  return settings;
}
