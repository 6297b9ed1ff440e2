/** Shell-style globs for names: `*` any run of characters, `?` one character; everything else literal. */

/** Compiles a glob into an anchored, case-sensitive RegExp (PostgreSQL role and database names are). */
export function compileGlob(pattern: string): RegExp {
  let source = "";
  for (const char of pattern) {
    if (char === "*") source += "[\\s\\S]*";
    else if (char === "?") source += "[\\s\\S]";
    else source += char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "u");
}
