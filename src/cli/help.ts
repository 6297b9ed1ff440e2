/** `pgrelay --help`, made from the flag table (options.ts) and the config key table (host/config_keys.ts). */
import { CONFIG_KEYS, CONFIG_NOTES, type ConfigKeyDoc } from "../host/config_keys.ts";
import { CLI_NOTES, CLI_OPTIONS, helpLines } from "./options.ts";

const WIDTH = 105;

/** Words of `text` in lines of at most `width` columns. */
export function wrap(text: string, width = WIDTH): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** "listen, upstream, ..., tls (mode, cert, key, require), ...": the top-level keys and their keys. */
export function configKeyList(): string {
  const nested = (doc: ConfigKeyDoc): string => {
    const keys = Object.keys(doc.keys ?? {});
    return keys.length === 0 || keys[0] === "NAME" ? "" : ` (${keys.join(", ")})`;
  };
  return Object.entries(CONFIG_KEYS).map(([key, doc]) => `${key}${nested(doc)}`).join(", ");
}

/** The options block alone (the README's "Command line" shows it). */
export function optionsBlock(): string {
  return CLI_OPTIONS.flatMap((option) => helpLines(option)).join("\n");
}

export const HELP: string = [
  "pgrelay: an identity PostgreSQL wire-protocol proxy",
  "",
  "Usage:",
  "  pgrelay [options]                  (deno run -A mod.ts [options] | bun mod.ts [options])",
  "",
  "Options:",
  optionsBlock(),
  "",
  ...wrap(`Config file keys: ${configKeyList()}.`),
  ...CONFIG_NOTES.slice(1, 2).flatMap((note) => wrap(note)),
  ...CLI_NOTES.flatMap((note) => wrap(`${note.title}: ${note.text}`)),
].join("\n");
