/**
 * Counters and histograms for the per-request series (requests, errors, produce and fetch
 * latency, KV operations): their series are plain numbers and arrays, counted with an
 * addition (a bound series) or one map lookup (by labels), and written as text at scrape
 * time.
 *
 * Why not prom-client's `Counter` and `Histogram` here: each `inc` and `observe` of theirs
 * validates the labels and builds a hash string from them, about 1 µs and 1.5 µs a call on
 * this project's machine (`deno task bench metrics`), and a Kafka or WebSocket request
 * makes several. The names, labels and text are the same as prom-client writes.
 *
 * @module
 */
import { labelText } from "./metrics_text.ts";

/** One counter series: add to `value`, or call `inc`. */
export interface CounterSeries {
  /** the count */
  value: number;
  /** adds `n` (default 1) */
  inc(n?: number): void;
}

class CounterCell implements CounterSeries {
  value = 0;
  constructor(readonly labels: string) {}
  inc(n = 1): void {
    this.value += n;
  }
}

/**
 * A counter.
 *
 * @example
 * ```ts
 * const c = new FastCounter("rill_requests_total", "Requests.", ["api", "route"]);
 * c.inc({ api: "ws", route: "produce" });
 * const produced = c.series({ api: "ws", route: "produce" }); // bound: no lookup
 * produced.inc();
 * ```
 */
export class FastCounter<L extends string = never> {
  readonly #cells = new Map<string, CounterCell>();

  /**
   * @param name the name (`rill_…_total`)
   * @param help one sentence
   * @param labelNames the label names
   */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[] = [],
  ) {}

  /**
   * The series of some labels, to count into without a lookup.
   *
   * @param labels a value for each label name
   * @returns the series
   */
  series(labels: Record<L, string> = {} as Record<L, string>): CounterSeries {
    const key = keyOf(this.labelNames, labels);
    let cell = this.#cells.get(key);
    if (cell === undefined) {
      cell = new CounterCell(
        labelText(this.labelNames, this.labelNames.map((n) => String(labels[n]))),
      );
      this.#cells.set(key, cell);
    }
    return cell;
  }

  /**
   * Adds to the series of some labels (prom-client's `inc` signature).
   *
   * @param labels a value for each label name, or the amount for a counter without labels
   * @param n the amount (default 1)
   */
  inc(labels?: Record<L, string> | number, n = 1): void {
    if (typeof labels === "number") this.series().value += labels;
    else this.series(labels).value += n;
  }

  /** The value of the series of some labels (0 when never counted). */
  get(labels: Record<L, string> = {} as Record<L, string>): number {
    return this.#cells.get(keyOf(this.labelNames, labels))?.value ?? 0;
  }

  /** Writes the counter's text (series counted at least once). */
  render(): string {
    const out = [`# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`];
    for (const c of this.#cells.values()) {
      if (c.value > 0) out.push(`${this.name}${c.labels} ${c.value}\n`);
    }
    return out.join("");
  }
}

/** One histogram series. */
export interface HistogramSeries {
  /** records one observation */
  observe(value: number): void;
}

class HistogramCell implements HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly labels: string, readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    if (i < b.length) this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/**
 * A histogram with fixed buckets (upper bounds, `le`).
 *
 * @example
 * ```ts
 * const h = new FastHistogram("rill_x_seconds", "X.", ["api"], [0.001, 0.01, 0.1]);
 * h.observe({ api: "ws" }, 0.004);
 * ```
 */
export class FastHistogram<L extends string = never> {
  readonly #cells = new Map<string, HistogramCell>();
  readonly #bounds: readonly number[];

  /**
   * @param name the name (`rill_…_seconds` or `_bytes`)
   * @param help one sentence
   * @param labelNames the label names
   * @param buckets the upper bounds, ascending (+Inf is added)
   */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    buckets: readonly number[],
  ) {
    this.#bounds = [...buckets].sort((a, b) => a - b);
  }

  /**
   * The series of some labels, to observe into without a lookup.
   *
   * @param labels a value for each label name
   * @returns the series
   */
  series(labels: Record<L, string> = {} as Record<L, string>): HistogramSeries {
    const key = keyOf(this.labelNames, labels);
    let cell = this.#cells.get(key);
    if (cell === undefined) {
      const names = this.labelNames;
      // The labels' text without its closing brace, so that `le` can follow.
      const text = labelText(names, names.map((n) => String(labels[n])));
      cell = new HistogramCell(text, this.#bounds);
      this.#cells.set(key, cell);
    }
    return cell;
  }

  /**
   * Records one observation in the series of some labels (prom-client's signature).
   *
   * @param labels a value for each label name
   * @param value the observation
   */
  observe(labels: Record<L, string>, value: number): void {
    this.series(labels).observe(value);
  }

  /** The observation count of the series of some labels. */
  count(labels: Record<L, string> = {} as Record<L, string>): number {
    return this.#cells.get(keyOf(this.labelNames, labels))?.count ?? 0;
  }

  /** Writes the histogram's text (series observed at least once). */
  render(): string {
    const name = this.name;
    const out = [`# HELP ${name} ${this.help}\n# TYPE ${name} histogram\n`];
    const les = this.#bounds.map((b) => `le="${b}"`);
    for (const c of this.#cells.values()) {
      if (c.count === 0) continue;
      const open = c.labels === "" ? "{" : `${c.labels.slice(0, -1)},`;
      let cumulative = 0;
      for (let i = 0; i < les.length; i++) {
        cumulative += c.counts[i];
        out.push(`${name}_bucket${open}${les[i]}} ${cumulative}\n`);
      }
      out.push(`${name}_bucket${open}le="+Inf"} ${c.count}\n`);
      out.push(`${name}_sum${c.labels} ${c.sum}\n${name}_count${c.labels} ${c.count}\n`);
    }
    return out.join("");
  }
}

function keyOf(names: readonly string[], labels: Record<string, string>): string {
  switch (names.length) {
    case 0:
      return "";
    case 1:
      return String(labels[names[0]]);
    case 2:
      return `${labels[names[0]]}\u0000${labels[names[1]]}`;
    default: {
      let key = String(labels[names[0]]);
      for (let i = 1; i < names.length; i++) key += `\u0000${labels[names[i]]}`;
      return key;
    }
  }
}
