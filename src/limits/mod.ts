export * from "./connection_counts.ts";
export * from "./limits_schema.ts";
export * from "./token_buckets.ts";
export * from "./source_key.ts";
export * from "./startup_limiter.ts";
