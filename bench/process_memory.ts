/** Resident memory of a benchmarked process, from /proc (Linux). */
import { readFileSync } from "node:fs";

/** VmRSS now, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
}

/** Lowest RSS over a few samples a quarter second apart (a collection may run in between). */
export async function settledRss(pid: number): Promise<number> {
  let low = Infinity;
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    low = Math.min(low, rssBytes(pid));
  }
  return low;
}
