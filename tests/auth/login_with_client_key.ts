/**
 * The upstream half of `auth.mode: scram`, as a test drives it: answering PostgreSQL's SASL challenges with
 * {@link ScramClientWithKey}, which knows the ClientKey and verifier but not the password.
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { ScramClientWithKey } from "../../src/auth/scram_client_with_key.ts";
import type { ScramVerifier } from "../../src/auth/scram_verifier.ts";
import { saslMechanisms } from "../support/backend_frames.ts";
import * as frontend from "../support/frontend_frames.ts";
import type { RawClient } from "../support/raw_client.ts";

/**
 * Startup as `user`, then the SASL exchange with only the ClientKey and verifier, through AuthenticationOk.
 * Throws BackendError when the server answers with an ErrorResponse.
 */
export async function loginWithClientKey(
  client: RawClient,
  user: string,
  clientKey: Uint8Array,
  verifier: ScramVerifier,
): Promise<void> {
  client.sendBytes(frontend.startupMessage({ user, database: "postgres" }));
  const mechanisms = saslMechanisms(await client.expectAuth(10));
  if (!mechanisms.includes("SCRAM-SHA-256")) throw new Error(`no SCRAM-SHA-256 in ${mechanisms.join(", ")}`);
  const scram = new ScramClientWithKey({ clientKey, verifier });
  const initial = scram.initialResponse();
  client.sendBytes(frontend.saslInitialResponse(initial.mechanism, initial.data));
  const serverFirst = await client.expectAuth(11);
  client.sendBytes(frontend.saslResponse(await scram.handleContinue(serverFirst)));
  await scram.handleFinal(await client.expectAuth(12));
  await client.expectAuth(0);
}
