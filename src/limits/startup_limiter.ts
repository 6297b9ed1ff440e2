/**
 * `limits.startup`: connections still in their startup phase (accepted, not yet ready, passthrough or
 * closed), at most `max_connections` at once and `per_source` from one client address (IPv6: one
 * `ipv6_prefix` block). Counts carry over a reload; `configure` only changes the caps for new connections.
 */
import { ClientError } from "../protocol/client_error.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";
import type { StartupGate, StartupTicket } from "../core/startup_gate.ts";
import { type Limits, NO_LIMITS } from "./limits_schema.ts";
import { sourceKey } from "./source_key.ts";

export class StartupLimiter implements StartupGate {
  #limits: Limits["startup"];
  #total = 0;
  readonly #bySource = new Map<string, number>();

  constructor(limits: Limits = NO_LIMITS) {
    this.#limits = limits.startup;
  }

  /** New caps for connections accepted from now on. */
  configure(limits: Limits): void {
    this.#limits = limits.startup;
  }

  /** Connections in their startup phase now (counted only while `limits.startup` is set). */
  get inStartup(): number {
    return this.#total;
  }

  /** Sources with a connection in its startup phase now. */
  get sources(): number {
    return this.#bySource.size;
  }

  enter(hostname: string): StartupTicket {
    const limits = this.#limits;
    if (!limits) return UNLIMITED;
    const key = sourceKey(hostname, limits.ipv6Prefix);
    if (limits.maxConnections !== undefined && this.#total >= limits.maxConnections) {
      return refuse(
        "startup.max_connections",
        `too many connections still starting up: pgrelay allows ${limits.maxConnections} at once (limits.startup.max_connections)`,
      );
    }
    const fromSource = this.#bySource.get(key) ?? 0;
    if (limits.perSource !== undefined && fromSource >= limits.perSource) {
      return refuse(
        "startup.per_source",
        `too many connections still starting up from ${key}: pgrelay allows ${limits.perSource} (limits.startup.per_source)`,
      );
    }
    this.#total++;
    this.#bySource.set(key, fromSource + 1);
    let released = false;
    return {
      allowed: true,
      release: () => {
        if (released) return;
        released = true;
        this.#total--;
        const left = (this.#bySource.get(key) ?? 1) - 1;
        if (left <= 0) this.#bySource.delete(key);
        else this.#bySource.set(key, left);
      },
    };
  }
}

/** Without `limits.startup` nothing is counted. */
const UNLIMITED: StartupTicket = { allowed: true, release() {} };

function refuse(rule: string, message: string): StartupTicket {
  return { allowed: false, rule, error: new ClientError({ severity: "FATAL", code: SQLSTATE.TOO_MANY_CONNECTIONS, message }) };
}
