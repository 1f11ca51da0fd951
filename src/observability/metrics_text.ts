/**
 * The Prometheus text format as Rill writes it without prom-client (metrics.ts' tables and
 * fast_series.ts): label sets, values, and tables of families sharing a label set.
 *
 * @module
 */

/**
 * Families rendered straight to text at scrape time, sharing one label set: each row gives
 * its labels (already formatted with {@linkcode labelText}) and one value per family.
 */
export interface TableSpec {
  /** "gauge" (default) or "counter" (names then end in `_total`) */
  type?: "gauge" | "counter";
  /** the families, each with its name (`rill_…`) and help */
  families: readonly { name: string; help: string }[];
  /**
   * Called at each scrape: calls `row` once per series set, with the labels' text and a
   * value for each family (in `families`' order; NaN leaves that family's series out).
   */
  collect: (
    row: (labels: string, values: ArrayLike<number>) => void,
  ) => void | Promise<void>;
}

/**
 * Formats a label set as the exposition format writes it: `{a="x",b="y"}` (values escaped).
 *
 * @param names the label names
 * @param values their values, in the same order
 * @returns the text, "" for no labels
 * @example
 * ```ts
 * labelText(["topic", "partition"], ["orders", "0"]); // '{topic="orders",partition="0"}'
 * ```
 */
export function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  let out = "{";
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += ",";
    out += `${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return out + "}";
}

const NEEDS_ESCAPE = /[\\"\n]/;

/**
 * Escapes a label value (backslash, double quote, newline), as the text format needs.
 *
 * @param value the value
 * @returns the escaped value
 */
export function escapeLabelValue(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function valueText(v: number): string {
  if (Number.isFinite(v)) return String(v);
  return Number.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
}

/**
 * Writes a table's families.
 *
 * @param t the table
 * @returns its text
 */
export async function renderTable(t: TableSpec): Promise<string> {
  const type = t.type ?? "gauge";
  const n = t.families.length;
  // Rows first (labels and a flat run of values), then each family's lines joined once:
  // about 80 ns a series, a quarter of appending to strings as rows come.
  const labels: string[] = [];
  const values: number[] = [];
  await t.collect((l, v) => {
    labels.push(l);
    for (let i = 0; i < n; i++) values.push(v[i]);
  });
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const { name, help } = t.families[i];
    out.push(`# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`);
    const lines: string[] = [];
    for (let r = 0, at = i; r < labels.length; r++, at += n) {
      const v = values[at];
      if (v === v) lines.push(name + labels[r] + " " + valueText(v) + "\n");
    }
    out.push(lines.join(""));
  }
  return out.join("");
}
