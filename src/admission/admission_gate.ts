/**
 * The session admission step: policy first (FATAL 28000 naming the rule), then the connect rate and the
 * connection limits (FATAL 53300). One gate lives for the whole process; `configure` swaps policy and limits
 * on reload while the live counts carry over, so sessions admitted before a reload are still counted.
 */
import { ClientError } from "../protocol/client_error.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";
import type { Admission, AdmissionVerdict } from "../core/session_hooks.ts";
import type { SessionContext } from "../core/session_context.ts";
import { ConnectionCounts } from "../limits/connection_counts.ts";
import { DEFAULT_CANCEL_RATE, type Limits, NO_LIMITS } from "../limits/limits_schema.ts";
import { TokenBuckets } from "../limits/token_buckets.ts";
import { evaluatePolicy, type PolicyFacts } from "../policy/evaluate.ts";
import { DEFAULT_POLICY, type Policy } from "../policy/policy_schema.ts";

export interface AdmissionGateOptions {
  policy?: Policy;
  limits?: Limits;
  /** Wall clock for time windows (tests). */
  now?: () => Date;
  /** Monotonic milliseconds for the connect rate (tests). */
  monotonicMs?: () => number;
}

export class AdmissionGate implements Admission {
  #policy: Policy;
  #limits: Limits;
  readonly #counts = new ConnectionCounts();
  readonly #buckets: TokenBuckets;
  readonly #cancelBuckets: TokenBuckets;
  readonly #now: () => Date;

  constructor(options: AdmissionGateOptions = {}) {
    this.#policy = options.policy ?? DEFAULT_POLICY;
    this.#limits = options.limits ?? NO_LIMITS;
    this.#now = options.now ?? (() => new Date());
    this.#buckets = new TokenBuckets(options.monotonicMs);
    this.#cancelBuckets = new TokenBuckets(options.monotonicMs);
  }

  get policy(): Policy {
    return this.#policy;
  }

  /** Sessions admitted and not yet ended. */
  get admitted(): number {
    return this.#counts.total;
  }

  /**
   * Connection-limit slots held now, per limit kind: every admitted session holds one slot of each kind
   * until it ends, so each value equals the admitted sessions unless a slot leaked.
   */
  slotsInUse(): Record<"max_connections" | "per_user" | "per_database" | "per_source", number> {
    const sum = (map: ReadonlyMap<string, number>) => {
      let total = 0;
      for (const held of map.values()) total += held;
      return total;
    };
    const counts = this.#counts;
    return {
      max_connections: counts.total,
      per_user: sum(counts.byUser),
      per_database: sum(counts.byDatabase),
      per_source: sum(counts.bySource),
    };
  }

  /** The configured caps among those slots that bound the whole process: `max_connections`, when set. */
  slotCaps(): Partial<Record<"max_connections", number>> {
    const cap = this.#limits.maxConnections;
    return cap === undefined ? {} : { max_connections: cap };
  }

  /** Takes a token from the client address's cancel bucket (`cancel_rate`, on by default); false when empty. */
  admitCancel(context: SessionContext): boolean {
    const rate = this.#limits.cancelRate ?? DEFAULT_CANCEL_RATE;
    return this.#cancelBuckets.take(context.client.hostname, rate.perSource, rate.burst);
  }

  /** New policy and limits for sessions that start from now on. */
  configure(policy: Policy, limits: Limits): void {
    this.#policy = policy;
    this.#limits = limits;
  }

  admit(context: SessionContext): AdmissionVerdict {
    const facts = factsOf(context, this.#now());
    const decision = evaluatePolicy(this.#policy, facts);
    if (decision.action === "deny") {
      return { allowed: false, kind: "denied", rule: decision.label, error: denial(decision.label, facts) };
    }
    const limits = this.#limits;
    const source = context.client.hostname;
    const { user, database } = context;
    if (
      limits.connectRate &&
      !this.#buckets.take(source, limits.connectRate.perSource, limits.connectRate.burst)
    ) {
      return limited(
        "connect_rate",
        `too many connection attempts from ${source}: pgrelay allows ${limits.connectRate.perSource} a second (burst ${limits.connectRate.burst})`,
      );
    }
    const counts = this.#counts;
    if (limits.maxConnections !== undefined && counts.total >= limits.maxConnections) {
      return limited(
        "max_connections",
        `too many connections: pgrelay allows ${limits.maxConnections} at once (max_connections)`,
      );
    }
    if (limits.perUser !== undefined && (counts.byUser.get(user) ?? 0) >= limits.perUser) {
      return limited(
        "per_user",
        `too many connections for user "${user}": pgrelay allows ${limits.perUser} (per_user)`,
      );
    }
    if (limits.perDatabase !== undefined && (counts.byDatabase.get(database) ?? 0) >= limits.perDatabase) {
      return limited(
        "per_database",
        `too many connections to database "${database}": pgrelay allows ${limits.perDatabase} (per_database)`,
      );
    }
    if (limits.perSource !== undefined && (counts.bySource.get(source) ?? 0) >= limits.perSource) {
      return limited(
        "per_source",
        `too many connections from ${source}: pgrelay allows ${limits.perSource} (per_source)`,
      );
    }
    counts.add(user, database, source);
    let released = false;
    return {
      allowed: true,
      rule: decision.label,
      release: () => {
        if (released) return;
        released = true;
        counts.remove(user, database, source);
      },
    };
  }

  /** For `enforce_on_reload`: the FATAL 57P01 a live session gets when the current policy denies it. */
  revocation(context: SessionContext): ClientError | undefined {
    const facts = factsOf(context, this.#now());
    const decision = evaluatePolicy(this.#policy, facts);
    if (decision.action === "allow") return undefined;
    return new ClientError({
      severity: "FATAL",
      code: SQLSTATE.ADMIN_SHUTDOWN,
      message: `terminating connection: pgrelay policy ${
        ruleText(decision.label)
      } now denies it (reloaded configuration)`,
    });
  }
}

export function factsOf(context: SessionContext, now: Date): PolicyFacts {
  return {
    user: context.user,
    database: context.database,
    applicationName: context.applicationName,
    replication: context.replication,
    source: context.client.hostname,
    tls: context.tls,
    now,
  };
}

const ruleText = (label: string) => label === "default" ? "default (no rule matched)" : `rule "${label}"`;

function denial(label: string, facts: PolicyFacts): ClientError {
  return new ClientError({
    severity: "FATAL",
    code: SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
    message: `connection denied by pgrelay policy ${ruleText(label)}`,
    detail:
      `user "${facts.user}", database "${facts.database}", application_name "${facts.applicationName}", ${
        facts.replication === "false" ? "" : `replication ${facts.replication}, `
      }source ${facts.source}, tls ${facts.tls}`,
  });
}

function limited(rule: string, message: string): AdmissionVerdict {
  return {
    allowed: false,
    kind: "limited",
    rule,
    error: new ClientError({ severity: "FATAL", code: SQLSTATE.TOO_MANY_CONNECTIONS, message }),
  };
}
