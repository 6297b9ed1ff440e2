/**
 * Connection failures worded the same on every runtime, for the client's 08001 message and the logs:
 * Bun says "Failed to connect", Deno "Connection refused (os error 111)"; operators get one vocabulary.
 */
const REASONS = {
  ECONNREFUSED: "connection refused",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name lookup failed temporarily",
  ECONNRESET: "connection reset",
} as const;

export function connectError(error: unknown): Error {
  const { code, message } = error as { code?: string; message?: string };
  const reason = code !== undefined && code in REASONS ? REASONS[code as keyof typeof REASONS] : undefined;
  if (reason) return new Error(`${reason} (${code})`);
  if (message && /lookup address|Name or service not known/.test(message)) return new Error(`host name not found (${message})`);
  return error instanceof Error ? error : new Error(String(error));
}
