/**
 * One host's health record: what the last health check (or connection attempt) said about it.
 *
 * A host that fails a check, or refuses a connection, is out (`up` false) until it passes a check again.
 * A host that nothing has checked yet is up with role `unknown` (it suits only the `any` target), so a
 * cluster without health checks (the `upstream: HOST:PORT` form) routes to it as before; there a successful
 * connection brings back a host that a refused one took out, since no check will.
 */
import type { HostRole } from "./target.ts";

/** What a health check that answered reports (see health_probe.ts). */
export interface HealthCheckResult {
  readonly role: "primary" | "standby";
  /** A primary's current WAL position, a standby's last replayed one; undefined when the server had none. */
  readonly lsn: bigint | undefined;
  /** A primary's current timeline, a standby's received one; undefined when unknown (no WAL receiver). */
  readonly timeline: number | undefined;
}

/** Why a host is out, which decides what brings it back. */
export const DOWN_REASONS = {
  check: "a health check failed; a passing check brings it back",
  connect:
    "a connection attempt failed; a passing check (or, unchecked, a successful connection) brings it back",
} as const;
export type DownReason = keyof typeof DOWN_REASONS;

/** The admin API's view of a host (`GET /clusters`), plus the count of failures in a row. */
export interface HostRecord {
  host: string;
  role: HostRole;
  up: boolean;
  lag_bytes: number | null;
  timeline: number | null;
  last_check: string | null;
  error: string | null;
  consecutive_failures: number;
}

/**
 * What a report changed, for the caller to act on: a host that went down ends the sessions bound to it
 * (08006, so none is left hanging on a host that stopped answering); a role change is logged and counted.
 */
export interface HostChange {
  readonly wasUp: boolean;
  readonly up: boolean;
  readonly wasRole: HostRole;
  readonly role: HostRole;
}

export class HostState {
  /** `HOST:PORT`, as configured and as metrics label it. */
  readonly address: string;
  #up = true;
  #downReason: DownReason | undefined;
  #role: HostRole = "unknown";
  #lsn: bigint | undefined;
  #timeline: number | undefined;
  #lastCheck: Date | undefined;
  #error: string | undefined;
  #failures = 0;
  #checked = false;

  constructor(address: string) {
    this.address = address;
  }

  get up(): boolean {
    return this.#up;
  }
  get downReason(): DownReason | undefined {
    return this.#downReason;
  }
  /** The role the last passing check saw; `unknown` before any, and after a failed check. */
  get role(): HostRole {
    return this.#role;
  }
  get lsn(): bigint | undefined {
    return this.#lsn;
  }
  get timeline(): number | undefined {
    return this.#timeline;
  }
  /** When the last check (passing or not) finished. */
  get lastCheck(): Date | undefined {
    return this.#lastCheck;
  }
  /** The last failure's message, cleared by a passing check. */
  get error(): string | undefined {
    return this.#error;
  }
  /** Failed checks and refused connections in a row since the last success. */
  get consecutiveFailures(): number {
    return this.#failures;
  }
  /** Whether a check has ever answered for this host (or failed): health checks are watching it. */
  get checked(): boolean {
    return this.#checked;
  }

  /** A check answered: the host is up with the role, position and timeline it reported. */
  recordCheck(result: HealthCheckResult, at: Date): HostChange | undefined {
    const wasUp = this.#up;
    const wasRole = this.#role;
    this.#checked = true;
    this.#up = true;
    this.#downReason = undefined;
    this.#role = result.role;
    this.#lsn = result.lsn;
    this.#timeline = result.timeline;
    this.#lastCheck = at;
    this.#error = undefined;
    this.#failures = 0;
    return this.#change(wasUp, wasRole);
  }

  /** A check failed (refused, timed out, bad answer): out until a check passes; its role is no longer known. */
  recordCheckFailure(error: string, at: Date): HostChange | undefined {
    const wasUp = this.#up;
    const wasRole = this.#role;
    this.#checked = true;
    this.#markDown("check", error);
    this.#role = "unknown";
    this.#lsn = undefined;
    this.#lastCheck = at;
    return this.#change(wasUp, wasRole);
  }

  /**
   * A session's connection attempt failed: out until a check passes. The role is kept (the check that saw it
   * was not wrong about it) but the host is not chosen while down.
   */
  recordConnectFailure(error: string): HostChange | undefined {
    const wasUp = this.#up;
    const wasRole = this.#role;
    if (this.#downReason === "check") {
      this.#failures++;
      this.#error = error;
      return undefined;
    }
    this.#markDown("connect", error);
    return this.#change(wasUp, wasRole);
  }

  /**
   * A session connected. Only a host that no check watches comes back this way; a checked host waits for a
   * passing check, so that one lucky connection does not undo what the checks decided.
   */
  recordConnectSuccess(): HostChange | undefined {
    const wasUp = this.#up;
    const wasRole = this.#role;
    if (this.#checked || this.#downReason !== "connect") return undefined;
    this.#up = true;
    this.#downReason = undefined;
    this.#error = undefined;
    this.#failures = 0;
    return this.#change(wasUp, wasRole);
  }

  #change(wasUp: boolean, wasRole: HostRole): HostChange | undefined {
    return wasUp === this.#up && wasRole === this.#role
      ? undefined
      : { wasUp, up: this.#up, wasRole, role: this.#role };
  }

  /** The admin API's record, with the lag the cluster measured against its primary. */
  record(lagBytes: number | undefined): HostRecord {
    return {
      host: this.address,
      role: this.#role,
      up: this.#up,
      lag_bytes: lagBytes ?? null,
      timeline: this.#timeline ?? null,
      last_check: this.#lastCheck?.toISOString() ?? null,
      error: this.#error ?? null,
      consecutive_failures: this.#failures,
    };
  }

  #markDown(reason: DownReason, error: string): void {
    this.#up = false;
    this.#downReason = reason;
    this.#error = error;
    this.#failures++;
  }
}
