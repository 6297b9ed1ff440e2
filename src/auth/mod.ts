/**
 * Building blocks of `auth.mode: scram`: pgrelay authenticates clients with SCRAM-SHA-256(-PLUS) against
 * an auth file's verifiers, then logs in upstream with the recovered ClientKey.
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
export * from "./scram_client_with_key.ts";
export * from "./scram_keys.ts";
export * from "./scram_server.ts";
export * from "./scram_verifier.ts";
export * from "./tls_server_end_point.ts";
export * from "./userlist.ts";
export * from "./scram_client_with_password.ts";
export * from "./scram_mock.ts";
