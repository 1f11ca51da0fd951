/**
 * `rill perf produce|consume` as a subprocess against a broker process: the records it says
 * it sent are in the topic, the consumer reads them all back, progress lines come while a
 * paced run lasts, and bad flags get one-line errors.
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function rill(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("rill perf produces and consumes what it reports, with progress and JSON", async () => {
  await using broker = await startBroker();
  const env = { RILL_BROKER: broker.url };
  const created = await rill(["topics", "create", "load", "--partitions", "2"], env);
  assert.equal(created.code, 0, created.stderr);

  // 3,000 records at 1,500/s: about two seconds, so progress lines are printed meanwhile.
  const produced = await rill([
    "perf",
    "produce",
    "--topic",
    "load",
    "--records",
    "3000",
    "--record-size",
    "200",
    "--rate",
    "1500",
    "--acks",
    "1",
    "--json",
  ], env);
  assert.equal(produced.code, 0, produced.stderr);
  const summary = JSON.parse(produced.stdout);
  assert.equal(summary.mode, "produce");
  assert.equal(summary.records, 3000);
  assert.equal(summary.bytes, 3000 * 200);
  assert.equal(summary.done, true);
  assert.ok(summary.recordsPerSecond > 0 && summary.recordsPerSecond <= 1700, produced.stdout);
  assert.ok(summary.latencyMs.p50 > 0 && summary.latencyMs.p99 >= summary.latencyMs.p50);
  const progress = produced.stderr.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
  assert.ok(progress.length >= 1, "at least one progress line");
  assert.ok(progress.every((p) => p.done === false && p.records <= 3000));

  // The topic holds exactly what perf produce reported.
  const offsets = await (await fetch(`${broker.url}/v1/topics/load`)).json();
  const held = offsets.partitions.reduce(
    (n: number, p: { highWatermark: number; logStartOffset: number }) =>
      n + p.highWatermark - p.logStartOffset,
    0,
  );
  assert.equal(held, 3000);

  const consumed = await rill(["perf", "consume", "--topic", "load"], env);
  assert.equal(consumed.code, 0, consumed.stderr);
  assert.match(
    consumed.stdout,
    /^3000 records read in [\d.]+ s, \d+ records\/s \([\d.]+ MB\/s\), latency avg /,
  );

  const grouped = await rill(
    ["perf", "consume", "--topic", "load", "--group", "perf", "--records", "3000", "--json"],
    env,
  );
  assert.equal(grouped.code, 0, grouped.stderr);
  assert.equal(JSON.parse(grouped.stdout).records, 3000);
  const lag = await (await fetch(`${broker.url}/v1/groups/perf/offsets`)).json();
  assert.equal(lag.totalLag, 0, "the group committed what it read");

  // Compressed batches: the records land all the same.
  const zipped = await rill([
    "perf",
    "produce",
    "--topic",
    "load",
    "--records",
    "500",
    "--record-size",
    "100",
    "--compression",
    "gzip",
    "--json",
  ], env);
  assert.equal(zipped.code, 0, zipped.stderr);
  assert.equal(JSON.parse(zipped.stdout).records, 500);
  const after = await rill(["perf", "consume", "--topic", "load", "--json"], env);
  assert.equal(JSON.parse(after.stdout).records, 3500);

  const bad = await rill(["perf", "produce", "--topic", "load", "--records", "-5"], env);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim(), "rill: --records must be at least 1, got -5");
  const missing = await rill(["perf", "produce", "--topic", "load", "--records", "5"], env);
  assert.equal(missing.stderr.trim(), "rill: --record-size is required");
});
