/** The pgrelay config the soak runs with, rewritten with a small change before every SIGHUP. */
import { writeFileSync } from "node:fs";
import type { TestPki } from "../tests/support/certs.ts";
import { HOST, STARTUP_TIMEOUT_S } from "./settings.ts";

export interface SoakConfig {
  readonly path: string;
  readonly upstreamPort: number;
  readonly pki: TestPki;
}

/**
 * Writes generation `generation` of the config: TLS terminate (plaintext clients allowed too), the audit
 * log on (every query, to /dev/null) and limits whose max_connections alternates between two values, so
 * each reload really changes something.
 */
export function writeConfig(config: SoakConfig, generation: number): void {
  const text = [
    `# pgrelay soak config, generation ${generation}`,
    `upstream: ${HOST}:${config.upstreamPort}`,
    `startup_timeout: ${STARTUP_TIMEOUT_S}s`,
    "connect_timeout: 10s",
    "log_level: debug", // session_start names each client address: sessions left open are traced to their client
    `admin: { listen: "${HOST}:0" }`,
    "drain_timeout: 5s",
    "tls:",
    "  mode: terminate",
    `  cert: ${JSON.stringify(config.pki.proxy.certPath)}`,
    `  key: ${JSON.stringify(config.pki.proxy.keyPath)}`,
    "  require: false",
    "limits:",
    `  max_connections: ${1000 + (generation % 2)}`,
    "  per_user: 500",
    "audit:",
    "  path: /dev/null",
    "  queries: true",
    "",
  ].join("\n");
  writeFileSync(config.path, text);
}
