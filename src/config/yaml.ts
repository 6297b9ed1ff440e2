/**
 * The one module that knows which YAML library pgrelay uses (npm `yaml`; JSR's @std/yaml is out of reach).
 * Returns plain data plus a way to find the line of any key, for error messages.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";

export interface YamlDocument {
  value: unknown;
  /** 1-based line of the node at `path` (or of its nearest existing parent). */
  lineOf(path: ReadonlyArray<string | number>): number | undefined;
}

export class YamlSyntaxError extends SyntaxError {
  readonly line: number | undefined;
  constructor(message: string, line: number | undefined) {
    super(message);
    this.name = "YamlSyntaxError";
    this.line = line;
  }
}

export function parseYaml(text: string): YamlDocument {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const first = document.errors[0];
  if (first) {
    const line = lineCounter.linePos(first.pos[0]).line;
    throw new YamlSyntaxError(first.message.split("\n")[0] ?? first.message, line);
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // An alias without its anchor, or too many aliases (a billion-laughs document), is found only here,
    // and thrown as ReferenceError: it is the file's fault, so it is reported like a syntax error.
    if (!(error instanceof ReferenceError)) throw error;
    throw new YamlSyntaxError(error.message.split("\n")[0] ?? error.message, undefined);
  }
  return {
    value,
    lineOf(path) {
      for (let depth = path.length; depth >= 0; depth--) {
        const node = document.getIn(path.slice(0, depth), true);
        const offset = (isScalar(node) || isMap(node) || isSeq(node)) ? node.range?.[0] : undefined;
        if (offset !== undefined) return lineCounter.linePos(offset).line;
      }
      return undefined;
    },
  };
}
