/**
 * Quoting for the SQL pgrelay writes itself (the replay of session settings): identifiers and literals
 * that read back exactly, whatever the server's standard_conforming_strings.
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 */

/**
 * Keywords that cannot stand as a bare column or setting name (PostgreSQL's reserved and
 * type/function-name keywords); anything in this set is double-quoted.
 * https://www.postgresql.org/docs/current/sql-keywords-appendix.html
 */
const NOT_BARE = new Set([
  "all",
  "analyse",
  "analyze",
  "and",
  "any",
  "array",
  "as",
  "asc",
  "asymmetric",
  "authorization",
  "binary",
  "both",
  "case",
  "cast",
  "check",
  "collate",
  "collation",
  "column",
  "concurrently",
  "constraint",
  "create",
  "cross",
  "current_catalog",
  "current_date",
  "current_role",
  "current_schema",
  "current_time",
  "current_timestamp",
  "current_user",
  "default",
  "deferrable",
  "desc",
  "distinct",
  "do",
  "else",
  "end",
  "except",
  "false",
  "fetch",
  "for",
  "foreign",
  "freeze",
  "from",
  "full",
  "grant",
  "group",
  "having",
  "ilike",
  "in",
  "initially",
  "inner",
  "intersect",
  "into",
  "is",
  "isnull",
  "join",
  "lateral",
  "leading",
  "left",
  "like",
  "limit",
  "localtime",
  "localtimestamp",
  "natural",
  "not",
  "notnull",
  "null",
  "offset",
  "on",
  "only",
  "or",
  "order",
  "outer",
  "overlaps",
  "placing",
  "primary",
  "references",
  "returning",
  "right",
  "select",
  "session_user",
  "similar",
  "some",
  "symmetric",
  "system_user",
  "table",
  "tablesample",
  "then",
  "to",
  "trailing",
  "true",
  "union",
  "unique",
  "user",
  "using",
  "variadic",
  "verbose",
  "when",
  "where",
  "window",
  "with",
]);

const BARE = /^[a-z_][a-z0-9_$]*$/;

/** `name` as an identifier: bare when it reads back the same, else in double quotes with `"` doubled. */
export function quoteIdentifier(name: string): string {
  if (BARE.test(name) && !NOT_BARE.has(name)) return name;
  return `"${name.replaceAll('"', '""')}"`;
}

/** A setting name, `a` or `a.b` (a custom setting): each part quoted as needed. */
export function quoteSettingName(name: string): string {
  return name.split(".").map(quoteIdentifier).join(".");
}

/**
 * `value` as a string constant: `'...'` with `'` doubled, or `E'...'` with `\` doubled too when it holds a
 * backslash, so the constant means the same with standard_conforming_strings on or off.
 */
export function quoteLiteral(value: string): string {
  const body = value.replaceAll("'", "''");
  return value.includes("\\") ? `E'${body.replaceAll("\\", "\\\\")}'` : `'${body}'`;
}
