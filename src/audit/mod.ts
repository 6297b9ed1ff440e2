export * from "./audit_log.ts";
export * from "./audit_schema.ts";
export * from "./audit_writer.ts";
export * from "./query_tracker.ts";
export * from "./redact.ts";
