export * from "./cidr.ts";
export * from "./evaluate.ts";
export * from "./glob.ts";
export * from "./policy_schema.ts";
export * from "./time_window.ts";
