/**
 * The secret behind auth.mode scram's mock verifiers (src/auth/scram_mock.ts), made once per process. A
 * `--workers` supervisor hands its own to every worker in the environment, so all workers answer an unknown
 * user with the same salt: a salt that changed from one connection to the next would give the mock away.
 */
import process from "node:process";
import { MOCK_SECRET_LENGTH } from "../auth/scram_mock.ts";

/** Set in a worker's environment: the supervisor's mock secret, in hex. */
export const MOCK_SECRET_ENV = "PGRELAY_SCRAM_MOCK_SECRET";

let secret: Uint8Array | undefined;

/** This process's secret: the supervisor's when it is a worker, else random bytes made on first use. */
export function processMockSecret(): Uint8Array {
  secret ??= fromHex(process.env[MOCK_SECRET_ENV]) ?? crypto.getRandomValues(new Uint8Array(MOCK_SECRET_LENGTH));
  return secret;
}

/** {@link processMockSecret} in hex, for a worker's environment. */
export function processMockSecretHex(): string {
  return Array.from(processMockSecret(), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function fromHex(text: string | undefined): Uint8Array | undefined {
  if (text === undefined || !/^(?:[0-9a-f]{2}){16,}$/.test(text)) return undefined;
  return Uint8Array.from(text.match(/../g)!, (pair) => Number.parseInt(pair, 16));
}
