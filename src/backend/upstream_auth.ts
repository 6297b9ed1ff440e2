/**
 * Which authentication requests pgrelay answers when it logs in to the server itself (auth.mode scram with
 * the client's ClientKey, and auth.query as auth.user), like libpq's `require_auth`: by default only
 * SCRAM-SHA-256, whose server signature proves the server holds the verifier. `password` lets auth.user's
 * password go to the server in cleartext; `none` accepts a server that asks for nothing (trust), which
 * proves nothing about it. md5 is never answered.
 * https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-REQUIRE-AUTH
 */
export const UPSTREAM_AUTH_METHODS = ["scram-sha-256", "password", "none"] as const;
export type UpstreamAuthMethod = typeof UPSTREAM_AUTH_METHODS[number];

/** The default of `auth.upstream_require_auth`. */
export const DEFAULT_UPSTREAM_REQUIRE_AUTH: readonly UpstreamAuthMethod[] = ["scram-sha-256"];

/** libpq's wording when the server asks for (or skips to) a method the settings do not allow. */
export function requirementFailed(allowed: readonly UpstreamAuthMethod[], reason: string): string {
  return `authentication method requirement "${allowed.join(",")}" failed: ${reason}`;
}
