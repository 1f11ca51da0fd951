/**
 * The shape of benchmark results: every suite reports figures through a {@linkcode Reporter};
 * bench/main.ts prints each as a JSON line as it comes and a table at the end.
 *
 * @module
 */

/** One measured figure. */
export interface Figure {
  /** the suite, e.g. "storage" */
  suite: string;
  /** what was measured, e.g. "append 1KiB records" */
  name: string;
  /** the measured value */
  value: number;
  /** its unit, e.g. "records/s", "MB/s", "ms", "MiB" */
  unit: string;
  /** the value divided by the baseline measured in the same run, when there is one */
  ratio?: number;
  /** what the baseline was, e.g. "raw sequential write" */
  baseline?: string;
  /** the target, in words, e.g. ">= 0.8 of raw" */
  target?: string;
  /** whether the target was met, when it can be judged */
  met?: boolean;
}

/** Receives figures from a suite. */
export type Reporter = (figure: Figure) => void;

/** A benchmark suite: a module exporting `run`. */
export interface Suite {
  /** runs the suite, reporting figures as they are measured */
  run(report: Reporter): Promise<void>;
}
