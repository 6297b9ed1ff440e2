export * from "./config_error.ts";
export * from "./load.ts";
export * from "./raw_layer.ts";
export * from "./units.ts";
