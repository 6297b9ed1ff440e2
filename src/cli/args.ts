/**
 * The one module that knows which flag parser pgrelay uses (`parseArgs` from node:util; JSR's @std/cli is
 * out of reach). Flags override the config file.
 */
import { parseArgs } from "node:util";
import { CLI_OPTIONS } from "./options.ts";

export { HELP } from "./help.ts";

export interface CliArgs {
  help: boolean;
  version: boolean;
  check: boolean;
  /** `--explain KEY=VALUE...`: the facts to explain the policy decision for. */
  explain?: string[];
  config?: string;
  /** Config keys set by flags, validated like the file's values (nested keys as mappings). */
  overrides: Record<string, unknown>;
}

/** Flags that set a config key (options.ts): "admin.listen" sets one key of the admin mapping. */
const KEY_FLAGS: ReadonlyArray<{ flag: string; key: string }> = CLI_OPTIONS.flatMap((option) => "key" in option ? [{ flag: option.flag, key: option.key }] : []);

export function parseCliArgs(argv: readonly string[]): CliArgs {
  const { values, positionals } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "V" },
      check: { type: "boolean" },
      explain: { type: "boolean" },
      config: { type: "string", short: "c" },
      ...Object.fromEntries(KEY_FLAGS.map(({ flag }) => [flag, { type: "string" as const }])),
    },
  });
  if (positionals.length > 0 && values.explain !== true) {
    throw new TypeError(`unexpected argument "${positionals[0]}": pgrelay takes only flags (and KEY=VALUE words after --explain)`);
  }
  const overrides: Record<string, unknown> = {};
  for (const { flag, key } of KEY_FLAGS) {
    const value = (values as Record<string, unknown>)[flag];
    if (typeof value !== "string") continue;
    const [top = key, nested] = key.split(".");
    overrides[top] = nested === undefined ? value : { ...(overrides[top] as object | undefined), [nested]: value };
  }
  const args: CliArgs = {
    help: values.help === true,
    version: values.version === true,
    check: values.check === true,
    overrides,
  };
  if (typeof values.config === "string") args.config = values.config;
  if (values.explain === true) args.explain = positionals;
  return args;
}
