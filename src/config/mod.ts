export * from "./config_error.ts";
export * from "./load.ts";
export * from "./schema.ts";
export * from "./units.ts";
export * from "./validate.ts";
