/**
 * PostgreSQL's stored SCRAM-SHA-256 secret (`pg_authid.rolpassword`, PgBouncer auth_file entries):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, all three byte strings in base64.
 * The StoredKey/ServerKey definitions are RFC 5802 §3; SHA-256 is RFC 7677.
 * https://www.postgresql.org/docs/current/catalog-pg-authid.html ·
 * https://www.postgresql.org/docs/current/sasl-authentication.html ·
 * https://www.rfc-editor.org/rfc/rfc5802#section-3
 */
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { SCRAM_KEY_LENGTH } from "./scram_crypto.ts";

/** The parts of a SCRAM-SHA-256 verifier. The keys are secrets: they let anyone impersonate the server. */
export interface ScramVerifier {
  iterations: number;
  salt: Uint8Array;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

/** Prefix of every SCRAM-SHA-256 verifier. */
export const SCRAM_VERIFIER_PREFIX = "SCRAM-SHA-256$";

const MAX_ITERATIONS = 0x7fffffff;
const FORMAT = `expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`;

/**
 * Parses a verifier. Throws a RangeError that says what is wrong but never echoes the keys.
 * Like PostgreSQL's parse_scram_secret, StoredKey and ServerKey must decode to 32 bytes each.
 */
export function parseScramVerifier(text: string): ScramVerifier {
  if (!text.startsWith(SCRAM_VERIFIER_PREFIX)) {
    throw new RangeError(`invalid SCRAM verifier: does not start with "SCRAM-SHA-256$" (${FORMAT})`);
  }
  const sections = text.slice(SCRAM_VERIFIER_PREFIX.length).split("$");
  if (sections.length !== 2) {
    throw new RangeError(
      `invalid SCRAM verifier: ${sections.length + 1} '$'-separated sections instead of 3 (${FORMAT})`,
    );
  }
  const [params, keys] = sections as [string, string];
  const paramParts = params.split(":");
  const keyParts = keys.split(":");
  if (paramParts.length !== 2) {
    throw new RangeError(`invalid SCRAM verifier: "<iterations>:<salt>" expected (${FORMAT})`);
  }
  if (keyParts.length !== 2) {
    throw new RangeError(`invalid SCRAM verifier: "<StoredKey>:<ServerKey>" expected (${FORMAT})`);
  }
  const [iterationsText, saltText] = paramParts as [string, string];
  const [storedKeyText, serverKeyText] = keyParts as [string, string];

  if (!/^[1-9][0-9]{0,9}$/.test(iterationsText) || Number(iterationsText) > MAX_ITERATIONS) {
    throw new RangeError(
      `invalid SCRAM verifier: iteration count ${
        JSON.stringify(iterationsText.slice(0, 12))
      } is not an integer ` +
        `from 1 to ${MAX_ITERATIONS}`,
    );
  }
  const salt = decodeBase64(saltText);
  if (salt === undefined || salt.length === 0) {
    throw new RangeError("invalid SCRAM verifier: the salt is not non-empty base64");
  }
  return {
    iterations: Number(iterationsText),
    salt,
    storedKey: decodeKey(storedKeyText, "StoredKey"),
    serverKey: decodeKey(serverKeyText, "ServerKey"),
  };
}

function decodeKey(text: string, name: string): Uint8Array {
  const key = decodeBase64(text);
  if (key === undefined) throw new RangeError(`invalid SCRAM verifier: ${name} is not base64`);
  if (key.length !== SCRAM_KEY_LENGTH) {
    throw new RangeError(
      `invalid SCRAM verifier: ${name} is ${key.length} bytes, expected ${SCRAM_KEY_LENGTH}`,
    );
  }
  return key;
}

/** The stored text form of a verifier (inverse of {@link parseScramVerifier}). */
export function formatScramVerifier(verifier: ScramVerifier): string {
  return `${SCRAM_VERIFIER_PREFIX}${verifier.iterations}:${encodeBase64(verifier.salt)}` +
    `$${encodeBase64(verifier.storedKey)}:${encodeBase64(verifier.serverKey)}`;
}

/**
 * True for PostgreSQL's md5 secret: "md5" followed by 32 lowercase hex digits (the same test as
 * PostgreSQL's get_password_type). https://www.postgresql.org/docs/current/auth-password.html
 */
export function isMd5Verifier(text: string): boolean {
  return /^md5[0-9a-f]{32}$/.test(text);
}
