/** A config that cannot be used, with every problem found, each naming its file, line and key. */

export interface ConfigIssue {
  key: string;
  message: string;
  /** Where the value came from: a file name or a flag such as "--listen". */
  source?: string;
  line?: number;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ConfigError";
    this.issues = issues;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.source === undefined ? "" : issue.line === undefined ? `${issue.source}: ` : `${issue.source}:${issue.line}: `;
  return `${where}${issue.key}: ${issue.message}`;
}

/**
 * A problem inside a nested setting (a policy rule, an audit option): `path` leads from the top-level key to
 * the bad value, so the message can name it (`policy.rules[2].deny.source`) and its line.
 */
export class SettingError extends RangeError {
  readonly path: readonly (string | number)[];

  constructor(path: readonly (string | number)[], message: string) {
    super(message);
    this.name = "SettingError";
    this.path = path;
  }
}

/** Several SettingErrors from one value (every bad rule of a policy, so `--check` lists them all). */
export class SettingErrors extends RangeError {
  readonly errors: readonly SettingError[];

  constructor(errors: readonly SettingError[]) {
    super(errors.map((error) => error.message).join("; "));
    this.name = "SettingErrors";
    this.errors = errors;
  }
}

/** `["rules", 2, "deny"]` under `policy` → `policy.rules[2].deny`. */
export function formatPath(key: string, path: readonly (string | number)[]): string {
  return path.reduce<string>((text, part) => typeof part === "number" ? `${text}[${part}]` : `${text}.${part}`, key);
}
