export * from "./connection_counts.ts";
export * from "./limits_schema.ts";
export * from "./token_buckets.ts";
