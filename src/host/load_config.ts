/** Builds the Config from a config file (if any) and flag overrides, reporting every problem. */
import { readFile } from "node:fs/promises";
import { ConfigError, type ConfigIssue } from "../config/config_error.ts";
import { configLayerFromYaml } from "../config/load.ts";
import type { Config } from "./config_schema.ts";
import type { RawLayer } from "../config/raw_layer.ts";
import { buildConfig } from "./build_config.ts";

export async function loadConfig(file: string | undefined, overrides: Record<string, unknown>): Promise<Config> {
  const layers: RawLayer[] = [];
  const issues: ConfigIssue[] = [];
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      const code = (error as { code?: string }).code;
      const reason = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (error as Error).message;
      throw new ConfigError([{ key: "--config", message: `cannot read "${file}": ${reason}` }]);
    }
    const read = configLayerFromYaml(text, file);
    issues.push(...read.issues);
    if (read.layer) layers.push(read.layer);
  }
  layers.push({ values: overrides });
  const built = buildConfig(layers);
  issues.push(...built.issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return built.config;
}
