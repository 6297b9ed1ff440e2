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
