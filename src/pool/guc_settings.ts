/**
 * What pgrelay knows about PostgreSQL's run-time settings (GUCs) to carry a client's session from one
 * pooled server connection to the next: which ones the server reports in ParameterStatus, which of those
 * a client may set (and so pgrelay replays), and how list-valued settings are written.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-ASYNC
 * https://www.postgresql.org/docs/current/runtime-config-client.html
 */
import { quoteIdentifier } from "./sql_quote.ts";
import { lowerAscii } from "./sql_statements.ts";

/**
 * The settings marked GUC_REPORT (lower-cased names; `name` is how ParameterStatus spells them).
 * `replay: true`: a client can set it, so pgrelay sets it on a borrowed server whose value differs.
 * `replay: false`: read-only, or (session_authorization) state that pins instead.
 * `since`: the PostgreSQL major version that first reports it.
 */
export const REPORTED_SETTINGS = {
  application_name: { name: "application_name", replay: true, since: 9 },
  client_encoding: { name: "client_encoding", replay: true, since: 7 },
  datestyle: { name: "DateStyle", replay: true, since: 7 },
  default_transaction_read_only: { name: "default_transaction_read_only", replay: true, since: 14 },
  in_hot_standby: { name: "in_hot_standby", replay: false, since: 14 },
  integer_datetimes: { name: "integer_datetimes", replay: false, since: 8 },
  intervalstyle: { name: "IntervalStyle", replay: true, since: 8 },
  is_superuser: { name: "is_superuser", replay: false, since: 8 },
  scram_iterations: { name: "scram_iterations", replay: true, since: 16 },
  search_path: { name: "search_path", replay: true, since: 18 },
  server_encoding: { name: "server_encoding", replay: false, since: 7 },
  server_version: { name: "server_version", replay: false, since: 7 },
  session_authorization: { name: "session_authorization", replay: false, since: 7 },
  standard_conforming_strings: { name: "standard_conforming_strings", replay: true, since: 8 },
  timezone: { name: "TimeZone", replay: true, since: 8 },
} as const satisfies Record<string, { name: string; replay: boolean; since: number }>;
export type ReportedSetting = keyof typeof REPORTED_SETTINGS;

/** True when pgrelay sets this reported setting on a borrowed server (lower-cased name). */
export function replaysReported(name: string): boolean {
  const entry = (REPORTED_SETTINGS as Record<string, { replay: boolean } | undefined>)[name];
  return entry?.replay === true;
}

/**
 * Settings a SET statement changes that are not session state to replay: the transaction's own
 * characteristics (SET LOCAL in effect), `seed` (reseeds random(), not a value), and the role settings
 * (they pin: see pin_reasons.ts).
 */
export const NOT_REPLAYED = new Set([
  "transaction_isolation",
  "transaction_read_only",
  "transaction_deferrable",
  "seed",
  "role",
  "session_authorization",
]);

/**
 * Settings flagged GUC_LIST_INPUT | GUC_LIST_QUOTE: SET quotes each element as an identifier and joins them
 * with ", " (`SET search_path = 'My Schema', public` stores `"My Schema", public`).
 */
export const LIST_QUOTE_SETTINGS = new Set([
  "search_path",
  "temp_tablespaces",
  "local_preload_libraries",
  "session_preload_libraries",
]);

/**
 * The stored value of `SET name = e1, e2, ...` (flatten_set_variable_args): elements joined with ", ",
 * each quoted as an identifier for a list-quote setting.
 */
export function flattenSetting(name: string, elements: readonly string[]): string {
  return LIST_QUOTE_SETTINGS.has(name) ? elements.map(quoteListElement).join(", ") : elements.join(", ");
}

/** quote_identifier for list elements: an empty element is `""`. */
function quoteListElement(element: string): string {
  return element === "" ? '""' : quoteIdentifier(element);
}

/**
 * The elements of a list-quote setting's value (SplitIdentifierString): comma-separated, each
 * double-quoted (`""` for a quote) or bare (lower-cased, trimmed). An empty value has no elements.
 */
export function splitSettingList(value: string): string[] {
  const elements: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < value.length && /\s/.test(value[i]!)) i++;
  };
  skipSpace();
  if (i >= value.length) return elements;
  for (;;) {
    skipSpace();
    if (value[i] === '"') {
      let element = "";
      i++;
      while (i < value.length) {
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            element += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        element += value[i++];
      }
      elements.push(element);
    } else {
      const start = i;
      while (i < value.length && value[i] !== ",") i++;
      elements.push(lowerAscii(value.slice(start, i).trim()));
    }
    skipSpace();
    if (value[i] !== ",") break;
    i++;
  }
  return elements;
}

/**
 * The elements to write after `SET name =` so that the server stores `value` again: the split list for a
 * list-quote setting, else the value itself.
 */
export function settingElements(name: string, value: string): string[] {
  return LIST_QUOTE_SETTINGS.has(name) ? splitSettingList(value) : [value];
}
