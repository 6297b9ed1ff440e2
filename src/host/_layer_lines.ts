/** Where a cross-key config issue points: the last layer (file or flags) that set the key, and its line. */
import type { ConfigIssue } from "../config/config_error.ts";
import type { RawLayer } from "../config/raw_layer.ts";

/** The last layer that sets top-level `key` (later layers override earlier ones). */
export function lastLayerWith(layers: readonly RawLayer[], key: string): RawLayer | undefined {
  for (let i = layers.length - 1; i >= 0; i--) if (layers[i]!.values[key] !== undefined) return layers[i];
  return undefined;
}

/** `issue` with the file and line of `top`.`path` in `layer` (the line of `top` when the path has none). */
export function at(
  layer: RawLayer | undefined,
  top: string,
  path: readonly (string | number)[],
  issue: ConfigIssue,
): ConfigIssue {
  if (layer?.source === undefined) return issue;
  const line = layer.lineAt?.([top, ...path]) ?? layer.lineOf?.(top);
  return line === undefined ? { ...issue, source: layer.source } : { ...issue, source: layer.source, line };
}
