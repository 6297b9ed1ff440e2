/**
 * The config loader: YAML text → layer → validated Config. Properties: nothing is thrown (every problem is
 * a ConfigIssue naming its key, as `--check` prints them); a config without issues has the limits the
 * validator promises (max_message_size at least the startup packet limit, 1 to 64 workers).
 */
import { configLayerFromYaml } from "../../../src/config/load.ts";
import { buildConfig } from "../../../src/host/build_config.ts";
import { MAX_STARTUP_PACKET_BYTES } from "../../../src/protocol/limits.ts";
import { check, type FuzzTarget, onlyDocumented } from "../target.ts";

const decoder = new TextDecoder();

export const configTarget: FuzzTarget = {
  name: "config",
  maxLength: 4096,
  dictionary: [
    "listen: ",
    "upstream: ",
    "tls:\n  mode: terminate\n",
    "policy:\n  rules:\n    - deny: ",
    "limits:\n",
    "audit:\n",
    "auth:\n  mode: scram\n",
    "workers: ",
    "max_message_size: ",
    "startup_timeout: ",
    "&a ",
    "*a",
    "!!binary ",
    "<<: ",
    "{",
    "}",
    "[",
    "]",
    "- ",
    ": ",
    "\n  ",
    '"',
    "'",
    "1e999",
    "-1",
    "0x10",
    "64MB",
    "10s",
    "~",
    "null",
    "true",
  ],
  run(input) {
    const text = decoder.decode(input);
    try {
      const read = configLayerFromYaml(text, "fuzz.yaml");
      for (const issue of read.issues) {
        check(typeof issue.message === "string" && issue.message !== "", "an issue without a message");
      }
      if (!read.layer) return;
      const { config, issues } = buildConfig([read.layer]);
      for (const issue of issues) {
        check(typeof issue.message === "string" && issue.message !== "", "an issue without a message");
      }
      if (issues.length === 0) {
        check(
          config.maxMessageBytes >= MAX_STARTUP_PACKET_BYTES,
          `max_message_size ${config.maxMessageBytes}`,
        );
        check(
          Number.isInteger(config.workers) && config.workers >= 1 && config.workers <= 64,
          `workers ${config.workers}`,
        );
      }
    } catch (error) {
      onlyDocumented(error, () => false, "config loader");
    }
  },
};
