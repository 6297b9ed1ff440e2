/**
 * The few Prometheus instruments pgrelay needs, rendered in the text exposition format 0.0.4.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */

type Labels = Readonly<Record<string, string>>;

const escape = (value: string) => value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
const labelText = (labels: Labels) => {
  const entries = Object.entries(labels);
  return entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
};
const number = (value: number) => Number.isFinite(value) ? String(value) : value > 0 ? "+Inf" : "-Inf";

abstract class Instrument {
  readonly name: string;
  readonly help: string;
  abstract readonly type: string;

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  protected header(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}\n`;
  }

  abstract render(): string;
}

/** A counter or gauge with optional labels; each label set is one series. */
class Series extends Instrument {
  readonly type: "counter" | "gauge";
  readonly #series = new Map<string, { labels: Labels; value: number }>();

  constructor(type: "counter" | "gauge", name: string, help: string) {
    super(name, help);
    this.type = type;
  }

  add(by = 1, labels: Labels = {}): void {
    const key = labelText(labels);
    const series = this.#series.get(key);
    if (series) series.value += by;
    else this.#series.set(key, { labels, value: by });
  }

  set(value: number, labels: Labels = {}): void {
    this.#series.set(labelText(labels), { labels, value });
  }

  value(labels: Labels = {}): number {
    return this.#series.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    let text = this.header();
    for (const { labels, value } of this.#series.values()) text += `${this.name}${labelText(labels)} ${number(value)}\n`;
    return text;
  }
}

export class Counter extends Series {
  constructor(name: string, help: string) {
    super("counter", name, help);
  }
}

export class Gauge extends Series {
  constructor(name: string, help: string) {
    super("gauge", name, help);
  }
}

export class Histogram extends Instrument {
  readonly type = "histogram";
  readonly #bounds: readonly number[];
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(name: string, help: string, bounds: readonly number[]) {
    super(name, help);
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length);
  }

  get count(): number {
    return this.#count;
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    for (let i = 0; i < this.#bounds.length; i++) {
      if (value <= this.#bounds[i]!) {
        this.#counts[i]!++;
        break;
      }
    }
  }

  render(): string {
    let text = this.header();
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i]!;
      text += `${this.name}_bucket{le="${this.#bounds[i]}"} ${cumulative}\n`;
    }
    text += `${this.name}_bucket{le="+Inf"} ${this.#count}\n${this.name}_sum ${this.#sum}\n${this.name}_count ${this.#count}\n`;
    return text;
  }
}

/** One label set of a {@link LabeledHistogram}; keep it to observe without a lookup. */
export interface HistogramSeries {
  observe(value: number): void;
  readonly count: number;
}

/** A histogram with labels: one set of buckets per label set. */
export class LabeledHistogram extends Instrument {
  readonly type = "histogram";
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, { labels: Labels; counts: Float64Array; sum: number; count: number; observe(value: number): void }>();

  constructor(name: string, help: string, bounds: readonly number[]) {
    super(name, help);
    this.#bounds = bounds;
  }

  /** The series of `labels`, created on first use. */
  series(labels: Labels): HistogramSeries {
    const key = labelText(labels);
    const existing = this.#series.get(key);
    if (existing) return existing;
    const bounds = this.#bounds;
    const series = {
      labels,
      counts: new Float64Array(bounds.length),
      sum: 0,
      count: 0,
      observe(value: number): void {
        series.sum += value;
        series.count++;
        for (let i = 0; i < bounds.length; i++) {
          if (value <= bounds[i]!) {
            series.counts[i]!++;
            break;
          }
        }
      },
    };
    this.#series.set(key, series);
    return series;
  }

  render(): string {
    let text = this.header();
    for (const { labels, counts, sum, count } of this.#series.values()) {
      const bucket = (le: string, value: number) => `${this.name}_bucket${labelText({ ...labels, le })} ${value}\n`;
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += counts[i]!;
        text += bucket(String(this.#bounds[i]), cumulative);
      }
      text += bucket("+Inf", count) + `${this.name}_sum${labelText(labels)} ${sum}\n${this.name}_count${labelText(labels)} ${count}\n`;
    }
    return text;
  }
}

/** Latency buckets from 100 µs to 60 s. */
export const LATENCY_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60] as const;
/** Session lengths from 10 ms to a day. */
export const SESSION_BUCKETS = [0.01, 0.1, 1, 10, 60, 600, 3600, 86400] as const;
