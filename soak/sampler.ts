/** Samples a process's resident memory (/proc/PID/status VmRSS) and open fds (/proc/PID/fd) every second. */
import { readdirSync, readFileSync } from "node:fs";

export interface Sample {
  /** ms since the load started (negative before it). */
  at: number;
  rss: number;
  fds: number;
}

export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kib) * 1024;
}

export function fdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export class Sampler {
  readonly samples: Sample[] = [];
  readonly #pid: number;
  readonly #origin: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #error: string | undefined;

  /** `origin`: Date.now() of the load start. */
  constructor(pid: number, origin: number) {
    this.#pid = pid;
    this.#origin = origin;
  }

  /** The first sampling failure (the process vanished), if any. */
  get error(): string | undefined {
    return this.#error;
  }

  start(): void {
    this.sampleNow();
    this.#timer = setInterval(() => this.sampleNow(), 1000);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  sampleNow(): Sample | undefined {
    try {
      const sample = { at: Date.now() - this.#origin, rss: rssOf(this.#pid), fds: fdsOf(this.#pid) };
      this.samples.push(sample);
      return sample;
    } catch (err) {
      this.#error ??= `sampling pid ${this.#pid} failed: ${err instanceof Error ? err.message : String(err)}`;
      return undefined;
    }
  }
}
