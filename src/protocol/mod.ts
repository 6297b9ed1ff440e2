export * from "./codes.ts";
export * from "./error_response.ts";
export * from "./frame_scanner.ts";
export * from "./limits.ts";
export * from "./protocol_error.ts";
export * from "./sqlstate.ts";
export * from "./startup.ts";
export * from "./startup_reader.ts";
