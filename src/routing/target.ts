/**
 * Route targets: libpq's `target_session_attrs` words, and what each accepts.
 *
 * Two questions are asked of a target:
 * - before connecting, of a host's role as the health checks know it ({@link targetAcceptsRole});
 * - after login, of the server's own ParameterStatus facts (`in_hot_standby`, `default_transaction_read_only`),
 *   as libpq does, to catch a host whose role changed since its last check ({@link targetAcceptsServer}).
 * https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-TARGET-SESSION-ATTRS
 */

/** Every target with what it asks of a server (libpq's wording, shortened). */
export const TARGETS = {
  any: "any server",
  "read-write":
    "a server whose sessions accept writes by default (not in hot standby, default_transaction_read_only off)",
  "read-only":
    "a server whose sessions refuse writes by default (in hot standby, or default_transaction_read_only on)",
  primary: "a server that is not in hot standby",
  standby: "a server in hot standby",
  "prefer-standby": "a standby if one is eligible, otherwise any server",
} as const;
export type Target = keyof typeof TARGETS;
export const TARGET_NAMES = Object.keys(TARGETS) as readonly Target[];

/** What the health checks know of a host: `unknown` until a check has answered (or when nothing checks it). */
export const HOST_ROLES = ["primary", "standby", "unknown"] as const;
export type HostRole = typeof HOST_ROLES[number];

/** A server's own word about itself, from the ParameterStatus messages it sends after login. */
export interface ServerFacts {
  /** `in_hot_standby` (PostgreSQL 14 and later; undefined when the server did not report it). */
  readonly inHotStandby: boolean | undefined;
  /** `default_transaction_read_only` (undefined when the server did not report it). */
  readonly defaultTransactionReadOnly: boolean | undefined;
}

/** The target named by `text`, or undefined when it is not one of {@link TARGETS}. */
export function parseTarget(text: unknown): Target | undefined {
  return typeof text === "string" && Object.hasOwn(TARGETS, text) ? text as Target : undefined;
}

/**
 * Whether a host of this role may be chosen for the target. An `unknown` role suits only `any`: every other
 * target needs a check to have answered. `read-only` is served by standbys (a primary whose sessions default
 * to read-only is told apart only after login, by {@link targetAcceptsServer}). `prefer-standby` accepts both
 * roles; the cluster orders standbys first.
 */
export function targetAcceptsRole(target: Target, role: HostRole): boolean {
  switch (target) {
    case "any":
      return true;
    case "primary":
    case "read-write":
      return role === "primary";
    case "standby":
    case "read-only":
      return role === "standby";
    case "prefer-standby":
      return role !== "unknown";
  }
}

/**
 * Whether the server a session landed on suits the target, from the facts it reported at login, as libpq
 * decides it; undefined when a fact the target needs was not reported (a server before PostgreSQL 14 sends
 * no `in_hot_standby`), so the caller must ask the server (`SELECT pg_is_in_recovery()`).
 */
export function targetAcceptsServer(target: Target, facts: ServerFacts): boolean | undefined {
  const { inHotStandby, defaultTransactionReadOnly } = facts;
  switch (target) {
    case "any":
    case "prefer-standby":
      return true;
    case "primary":
      return inHotStandby === undefined ? undefined : !inHotStandby;
    case "standby":
      return inHotStandby;
    case "read-write":
      if (inHotStandby === true || defaultTransactionReadOnly === true) return false;
      return inHotStandby === undefined || defaultTransactionReadOnly === undefined ? undefined : true;
    case "read-only":
      if (inHotStandby === true || defaultTransactionReadOnly === true) return true;
      return inHotStandby === undefined || defaultTransactionReadOnly === undefined ? undefined : false;
  }
}

/** Reads a boolean ParameterStatus value (`on`/`off`) as the server sends it; undefined when absent or odd. */
export function parseServerBoolean(value: string | undefined): boolean | undefined {
  return value === "on" ? true : value === "off" ? false : undefined;
}
