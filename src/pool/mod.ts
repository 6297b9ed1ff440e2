/** Connection pooling without sockets: settings, the pool, the registry with per-host slots, pin reasons. */
export {
  ON_PIN_ACTIONS,
  type OnPin,
  parseMaxServerConnections,
  parsePool,
  POOL_DEFAULTS,
  POOL_MODES,
  type PoolMode,
  type PoolSettings,
} from "./pool_schema.ts";
export {
  Pool,
  type PoolEvents,
  type PoolOptions,
  type PoolStats,
  type ServerFactory,
  type SlotGate,
  type SlotUser,
  UNLIMITED_SLOTS,
} from "./pool.ts";
export { poolClosed, PoolError, tooManyWaiting, waitTimedOut } from "./pool_error.ts";
export {
  type PoolKey,
  poolLabel,
  type PoolMetricsSink,
  PoolRegistry,
  type PoolRegistryOptions,
  type PoolSnapshot,
} from "./pool_registry.ts";
export { HostSlots } from "./host_slots.ts";
export { PIN_REASON_NAMES, PIN_REASONS, pinError, type PinReason } from "./pin_reasons.ts";
export { type PoolTimers, SYSTEM_TIMERS } from "./pool_timers.ts";
