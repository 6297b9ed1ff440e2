/** Reads a config file's text (YAML) into a layer for `buildConfig`. */
import { type ConfigIssue } from "./config_error.ts";
import type { RawLayer } from "./raw_layer.ts";
import { parseYaml, YamlSyntaxError } from "./yaml.ts";

export function configLayerFromYaml(text: string, file: string): { layer?: RawLayer; issues: ConfigIssue[] } {
  let document;
  try {
    document = parseYaml(text);
  } catch (error) {
    if (!(error instanceof YamlSyntaxError)) throw error;
    const issue: ConfigIssue = { key: "(syntax)", message: error.message, source: file };
    if (error.line !== undefined) issue.line = error.line;
    return { issues: [issue] };
  }
  const value = document.value ?? {};
  if (typeof value !== "object" || Array.isArray(value)) {
    return { issues: [{ key: "(top level)", message: "expected a mapping of keys such as listen: and upstream:", source: file, line: 1 }] };
  }
  return {
    layer: { values: value as Record<string, unknown>, source: file, lineOf: (key) => document.lineOf([key]), lineAt: (path) => document.lineOf(path) },
    issues: [],
  };
}
