/**
 * What `--check` finds wrong with pooling as a whole: a pool needs pgrelay to log in to servers itself
 * (auth.mode scram), and the top-level `pool:` belongs to the `upstream:` form (with `routes:`, each route
 * carries its own `pool:`).
 */
import type { Config } from "./config_schema.ts";
import { type ConfigIssue, formatPath } from "../config/config_error.ts";
import type { RawLayer } from "../config/raw_layer.ts";
import { at, lastLayerWith } from "./_layer_lines.ts";

export const POOLING_NEEDS_SCRAM =
  "pooling needs pgrelay to log in to servers itself: set auth.mode: scram (clients' SCRAM keys are passed " +
  "through, or passwords come from auth.file or auth.query); with auth.mode relay each client logs in to its " +
  "own server connection, which can then never be shared";

export function poolingChecks(config: Config, layers: readonly RawLayer[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const routesLayer = lastLayerWith(layers, "routes");
  const poolLayer = lastLayerWith(layers, "pool");
  const pooledRoutes = config.routes.filter((route) => route.pool !== undefined);
  if (config.pool !== undefined && (config.routes.length > 0 || config.clusters.length > 0)) {
    issues.push(at(poolLayer, "pool", [], {
      key: "pool",
      message:
        "the top-level pool: applies only to the upstream: form; with routes:, put pool: in each route that pools",
    }));
  }
  if (config.auth.mode === "relay") {
    if (config.pool !== undefined && config.routes.length === 0) {
      issues.push(at(poolLayer, "pool", [], { key: "pool", message: POOLING_NEEDS_SCRAM }));
    }
    for (const route of pooledRoutes) {
      const path = [route.index, "pool"];
      issues.push(
        at(routesLayer, "routes", path, { key: formatPath("routes", path), message: POOLING_NEEDS_SCRAM }),
      );
    }
  }
  return issues;
}
