/**
 * Merges the Prometheus text of several worker processes into one exposition: each metric family keeps
 * one HELP/TYPE header, and every sample gains a `worker` label.
 */
export function mergeWorkerMetrics(texts: ReadonlyArray<{ worker: number; text: string }>): string {
  const families = new Map<string, { header: string[]; samples: string[] }>();
  for (const { worker, text } of texts) {
    let current: { header: string[]; samples: string[] } | undefined;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const header = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (header) {
        const name = header[2]!;
        let family = families.get(name);
        if (!family) families.set(name, family = { header: [], samples: [] });
        if (family.header.length < 2 && !family.header.some((h) => h.startsWith(`# ${header[1]}`))) family.header.push(line);
        current = family;
        continue;
      }
      current?.samples.push(withWorkerLabel(line, worker));
    }
  }
  let out = "";
  for (const family of families.values()) out += [...family.header, ...family.samples].join("\n") + "\n";
  return out;
}

function withWorkerLabel(sample: string, worker: number): string {
  const brace = sample.indexOf("{");
  const space = sample.indexOf(" ");
  if (brace >= 0 && brace < space) return `${sample.slice(0, brace + 1)}worker="${worker}",${sample.slice(brace + 1)}`;
  return `${sample.slice(0, space)}{worker="${worker}"}${sample.slice(space)}`;
}
