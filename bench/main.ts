/**
 * `deno task bench [suite…]`: runs the benchmark suites (all, or those named) and prints one
 * JSON line per figure as it is measured, then a table. Figures are never asserted in tests.
 *
 * @module
 */
import type { Figure, Suite } from "./_report.ts";

const SUITES: Record<string, () => Promise<Suite>> = {
  storage: () => import("./storage_bench.ts"),
  broker: () => import("./broker_bench.ts"),
  client: () => import("./client_bench.ts"),
  clients: () => import("./clients_bench.ts"),
  groups: () => import("./groups_bench.ts"),
  security: () => import("./security_bench.ts"),
  replication: () => import("./replication_bench.ts"),
  rebalance: () => import("./rebalance_bench.ts"),
  streams: () => import("./streams_bench.ts"),
  fetch: () => import("./fetch_bench.ts"),
  hostile: () => import("./hostile_bench.ts"),
  faults: () => import("./fault_bench.ts"),
  metrics: () => import("./metrics_bench.ts"),
  kv: () => import("./kv_bench.ts"),
  kafka: () => import("./kafka_bench.ts"),
  compression: () => import("./compression_bench.ts"),
  browser: () => import("./browser_bench.ts"),
};

const wanted = Deno.args.length > 0 ? Deno.args : Object.keys(SUITES);
const figures: Figure[] = [];
for (const name of wanted) {
  const load = SUITES[name];
  if (!load) {
    console.error(`Unknown suite "${name}"; known: ${Object.keys(SUITES).join(", ")}`);
    Deno.exit(2);
  }
  const suite = await load();
  await suite.run((f) => {
    figures.push(f);
    console.log(JSON.stringify(f));
  });
}

function fmt(n: number): string {
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString("en-US");
  return n.toPrecision(3);
}

const rows = figures.map((f) => [
  f.suite,
  f.name,
  `${fmt(f.value)} ${f.unit}`,
  f.ratio === undefined ? "" : `${f.ratio.toFixed(2)}× ${f.baseline ?? ""}`.trim(),
  f.target ?? "",
  f.met === undefined ? "" : f.met ? "yes" : "NO",
]);
const head = ["suite", "figure", "value", "ratio", "target", "met"];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => "| " + r.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
console.log("\n" + line(head));
console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
for (const r of rows) console.log(line(r));
