/** Every fuzz target, in the order `make fuzz` runs them. */
import { startupTarget } from "./startup.ts";
import { backendScannerTarget, frontendScannerTarget } from "./frame_scanner.ts";
import { scramServerTarget } from "./scram_server.ts";
import { scramClientWithKeyTarget, scramClientWithPasswordTarget } from "./scram_client.ts";
import { configTarget } from "./config.ts";
import { policyTarget, timeWindowTarget } from "./policy.ts";
import { redactGrammarTarget, redactMutateTarget } from "./redact.ts";
import type { FuzzTarget } from "../target.ts";

export const TARGETS: readonly FuzzTarget[] = [
  startupTarget,
  frontendScannerTarget,
  backendScannerTarget,
  scramServerTarget,
  scramClientWithKeyTarget,
  scramClientWithPasswordTarget,
  configTarget,
  policyTarget,
  timeWindowTarget,
  redactGrammarTarget,
  redactMutateTarget,
];
