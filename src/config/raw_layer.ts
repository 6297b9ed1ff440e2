/** One layer of raw settings (the config file or the command line), before `buildConfig` (src/host) assembles them. */
export interface RawLayer {
  values: Partial<Record<string, unknown>>;
  /** A file name, or undefined for flags (the issue then names the flag). */
  source?: string;
  lineOf?: (key: string) => number | undefined;
  /** The line of a nested value, such as ["policy", "rules", 2]. */
  lineAt?: (path: readonly (string | number)[]) => number | undefined;
}
