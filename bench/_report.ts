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

/**
 * The median of some numbers (the mean of the middle two for an even count).
 *
 * @param xs the numbers (at least one)
 * @returns their median
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The median of the per-round ratios `candidate[i] / baseline[i]`: each pair was measured
 * side by side, so drift in machine load cancels out of each ratio.
 *
 * @param candidate the candidate's figure of each round
 * @param baseline the baseline's figure of the same rounds
 * @returns the median ratio
 * @example
 * ```ts
 * pairedRatio([90, 80, 100], [100, 100, 100]); // 0.9
 * ```
 */
export function pairedRatio(candidate: readonly number[], baseline: readonly number[]): number {
  return median(candidate.map((c, i) => c / baseline[i]));
}

/**
 * Writes dirty pages back (`sync`), so that writeback of what one phase wrote does not land
 * in the next phase. Does nothing where there is no `sync` command.
 *
 * @example
 * ```ts
 * await settle();
 * ```
 */
export async function settle(): Promise<void> {
  try {
    await new Deno.Command("sync", { stdout: "null", stderr: "null" }).output();
  } catch {
    // no sync command: nothing to settle
  }
}

/**
 * Runs measurement phases in interleaved rounds: forward in even rounds, backward in odd
 * ones (A B, B A, A B, …), after one uncounted warm-up round, with `between` (e.g.
 * {@linkcode settle}) before every phase.
 *
 * @param rounds counted rounds
 * @param phases the phases by name; each returns its figure for the round
 * @param between run before each phase
 * @returns each phase's figures, one per counted round
 * @example
 * ```ts
 * const r = await interleaved(5, { a: async () => 1, b: async () => 2 }, settle);
 * median(r.a);
 * ```
 */
export async function interleaved<K extends string>(
  rounds: number,
  phases: Record<K, (round: number) => Promise<number>>,
  between: () => Promise<void> = async () => {},
): Promise<Record<K, number[]>> {
  const names = Object.keys(phases) as K[];
  const out = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let round = -1; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      await between();
      const v = await phases[name](round);
      if (round >= 0) out[name].push(v);
    }
  }
  return out;
}

/**
 * Prints each phase's per-round figures to stderr (one line a phase), so the spread behind
 * a median can be seen.
 *
 * @param suite the suite name
 * @param results what {@linkcode interleaved} returned
 * @example
 * ```ts
 * logRounds("streams", { plain: [1200, 1100], map: [1000, 1050] });
 * ```
 */
export function logRounds(suite: string, results: Record<string, number[]>): void {
  for (const [name, xs] of Object.entries(results)) {
    const shown = xs.map((x) =>
      x >= 1000 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3)
    );
    console.error(`${suite}: ${name} per round: ${shown.join(", ")}`);
  }
}
