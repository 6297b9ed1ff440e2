/**
 * What each of the soak's raw connections was doing, by local port, over time: pgrelay logs every session's
 * client address, so a session left open is traced back to the connection (and scenario) that opened it.
 */

/** Entries kept per port: ports are reused, the newest few are enough to match a session by time. */
const KEPT_PER_PORT = 4;

export class PortLabels {
  readonly #byPort = new Map<number, { at: number; label: string }[]>();

  record(port: number, label: string): void {
    let list = this.#byPort.get(port);
    if (list === undefined) this.#byPort.set(port, list = []);
    list.push({ at: Date.now(), label });
    if (list.length > KEPT_PER_PORT) list.shift();
  }

  /** The label of the connection from `port` recorded nearest to `at` (Date.now() ms), if any. */
  labelAt(port: number, at: number): string | undefined {
    let best: { at: number; label: string } | undefined;
    for (const entry of this.#byPort.get(port) ?? []) {
      if (best === undefined || Math.abs(entry.at - at) < Math.abs(best.at - at)) best = entry;
    }
    return best?.label;
  }
}
