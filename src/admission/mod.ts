export * from "./admission_gate.ts";
