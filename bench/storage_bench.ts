/**
 * Storage benchmark: the partition log against a raw file, in the same run, in the same
 * directory, with the same flush policy (OS-managed; no fsync on either side).
 *
 * - append 1 KiB and 100-byte records in ~1 MiB batches: records/s, MB/s, ratio to a raw
 *   sequential write of the same buffers (target ≥ 0.8);
 * - read the whole log in 1 MiB reads: ratio to reading the raw file in 1 MiB reads
 *   (target ≥ 0.5);
 * - scale: reopen time and random-offset read latency at 1× and 8× the data (256 MiB and
 *   2 GiB; `RILL_BENCH_SCALE=0.125` shrinks both for a quick run), ratio 8×/1× (≤ 1.5);
 * - memory: peak RSS while appending the 8× data (target < 200 MiB);
 * - idempotent producer: append throughput of idempotent batches (producer id, epoch and
 *   sequence checked against the producer state) against the same plain batches, 1 KiB
 *   records in 16 KiB batches (target ≥ 0.9).
 *
 * @module
 */
import type { Reporter } from "./_report.ts";
import { encodeBatch } from "../src/protocol/record_batch.ts";
import { PartitionLog } from "../src/storage/mod.ts";

const MiB = 1024 * 1024;
const SUITE = "storage";
const scale = Number(Deno.env.get("RILL_BENCH_SCALE") ?? "1");
const BASE_BYTES = Math.max(
  8 * MiB,
  Math.round(256 * MiB * (Number.isFinite(scale) && scale > 0 ? scale : 1)),
);

function batchOf(recordSize: number, targetBytes: number): { batch: Uint8Array; records: number } {
  const value = new Uint8Array(recordSize);
  for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
  const perRecord = recordSize + 8;
  const count = Math.max(1, Math.floor(targetBytes / perRecord));
  const records = Array.from({ length: count }, () => ({ value }));
  return { batch: encodeBatch(records), records: count };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let n = 0;
  while (n < bytes.length) n += await file.write(bytes.subarray(n));
}

async function rawWrite(path: string, batch: Uint8Array, count: number): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await writeAll(file, batch);
  const ms = performance.now() - t0;
  file.close();
  return ms;
}

async function logAppend(
  dir: string,
  batch: Uint8Array,
  count: number,
  onEach?: (i: number) => void,
): Promise<number> {
  const log = await PartitionLog.open(dir);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    await log.append(batch);
    onEach?.(i);
  }
  const ms = performance.now() - t0;
  await log.close();
  return ms;
}

function rawRead(path: string): { ms: number; bytes: number } {
  const t0 = performance.now();
  const file = Deno.openSync(path, { read: true });
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(MiB);
    let n = 0;
    while (n < buf.length) {
      const got = file.readSync(buf.subarray(n));
      if (got === null || got === 0) break;
      n += got;
    }
    total += n;
    if (n < buf.length) break;
  }
  file.close();
  return { ms: performance.now() - t0, bytes: total };
}

async function logRead(dir: string): Promise<{ ms: number; bytes: number }> {
  const log = await PartitionLog.open(dir);
  const t0 = performance.now();
  let offset = log.logStartOffset;
  let total = 0;
  while (offset < log.logEndOffset) {
    const r = await log.read(offset, MiB);
    total += r.bytes.length;
    offset = r.nextOffset;
  }
  const ms = performance.now() - t0;
  await log.close();
  return { ms, bytes: total };
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch(() => {});
}

/**
 * Runs the storage benchmark.
 *
 * @param report receives each figure as it is measured
 */
export async function run(report: Reporter): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "rill-bench-storage-" });
  try {
    // ---------------------------------------------------------------- append
    let readDir = "";
    let readRaw = "";
    for (const recordSize of [1024, 100]) {
      const { batch, records } = batchOf(recordSize, MiB);
      const count = Math.ceil(BASE_BYTES / batch.length);
      const bytes = count * batch.length;
      const rawPath = `${root}/raw-${recordSize}.bin`;
      const logDir = `${root}/log-${recordSize}`;
      const rawMs: number[] = [];
      const logMs: number[] = [];
      // Three rounds, alternating which goes first (the OS's write-back of the previous
      // file competes with whichever runs second); best of each.
      for (let round = 0; round < 3; round++) {
        await removeQuietly(rawPath);
        await removeQuietly(logDir);
        if (round % 2 === 0) {
          rawMs.push(await rawWrite(rawPath, batch, count));
          logMs.push(await logAppend(logDir, batch, count));
        } else {
          logMs.push(await logAppend(logDir, batch, count));
          rawMs.push(await rawWrite(rawPath, batch, count));
        }
      }
      const raw = Math.min(...rawMs);
      const ours = Math.min(...logMs);
      const name = recordSize === 1024 ? "1 KiB" : "100 B";
      report({
        suite: SUITE,
        name: `append ${name} records, 1 MiB batches`,
        value: (count * records) / (ours / 1000),
        unit: "records/s",
      });
      const ratio = raw / ours;
      report({
        suite: SUITE,
        name: `append ${name} records, 1 MiB batches`,
        value: bytes / MiB / (ours / 1000),
        unit: "MB/s",
        ratio,
        baseline: `raw write ${(bytes / MiB / (raw / 1000)).toFixed(0)} MB/s`,
        target: ">= 0.8",
        met: ratio >= 0.8,
      });
      if (recordSize === 1024) {
        readDir = logDir;
        readRaw = rawPath;
      } else {
        await removeQuietly(rawPath);
        await removeQuietly(logDir);
      }
    }

    // ---------------------------------------------------------------- idempotent
    {
      const batchBytes = 16 * 1024;
      const count = 2048; // 32 MiB per run, whatever RILL_BENCH_SCALE says
      const value = new Uint8Array(1024).map((_, i) => (i * 31) & 0xff);
      const perBatch = Math.floor(batchBytes / (1024 + 8));
      const records = Array.from({ length: perBatch }, () => ({ value }));
      // Distinct buffers on both sides, encoded up front: the producer's work is not measured.
      // 32 MiB of each.
      const plain = Array.from({ length: count }, () => encodeBatch(records));
      const idempotent = Array.from(
        { length: count },
        (_, i) =>
          encodeBatch(records, { producerId: 1, producerEpoch: 0, baseSequence: i * perBatch }),
      );
      // Both kinds go to one log in alternating chunks of 32 appends, so that disk
      // write-back and other processes' load fall on both alike.
      const dir = `${root}/idempotent`;
      let plainTotal = 0;
      let idemTotal = 0;
      const log = await PartitionLog.open(dir);
      const chunk = 32;
      for (let at = 0; at < count; at += chunk) {
        const order = (at / chunk) % 2 === 0 ? [plain, idempotent] : [idempotent, plain];
        for (const batches of order) {
          const t0 = performance.now();
          for (let i = at; i < at + chunk; i++) {
            const r = await log.append(batches[i]);
            if (r.duplicate) throw new Error("An idempotent batch was taken as a duplicate");
          }
          const ms = performance.now() - t0;
          if (batches === plain) plainTotal += ms;
          else idemTotal += ms;
        }
      }
      await log.close();
      await removeQuietly(dir);
      const ratio = plainTotal / idemTotal;
      report({
        suite: SUITE,
        name: "append idempotent batches (1 KiB records, 16 KiB batches)",
        value: (count * perBatch) / (idemTotal / 1000),
        unit: "records/s",
        ratio,
        baseline: `plain batches ${
          ((count * perBatch) / (plainTotal / 1000)).toFixed(0)
        } records/s`,
        target: ">= 0.9",
        met: ratio >= 0.9,
      });
    }

    // ---------------------------------------------------------------- read
    {
      const rawRuns = [rawRead(readRaw), rawRead(readRaw)];
      const logRuns = [await logRead(readDir), await logRead(readDir)];
      const raw = Math.min(...rawRuns.map((r) => r.ms));
      const ours = Math.min(...logRuns.map((r) => r.ms));
      const bytes = logRuns[0].bytes;
      const ratio = raw / ours;
      report({
        suite: SUITE,
        name: "read whole log, 1 MiB reads",
        value: bytes / MiB / (ours / 1000),
        unit: "MB/s",
        ratio,
        baseline: `raw read ${(rawRuns[0].bytes / MiB / (raw / 1000)).toFixed(0)} MB/s`,
        target: ">= 0.5",
        met: ratio >= 0.5,
      });
      await removeQuietly(readRaw);
      await removeQuietly(readDir);
    }

    // ---------------------------------------------------------------- scale + memory
    const { batch } = batchOf(1024, 64 * 1024);
    const figures: { reopenMs: number; lookupUs: number }[] = [];
    for (const factor of [1, 8]) {
      const dir = `${root}/scale-${factor}`;
      const count = Math.ceil((BASE_BYTES * factor) / batch.length);
      if (factor === 8) {
        // Measured in a fresh process, so that garbage from the phases above does not count.
        const child = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            new URL(import.meta.url).pathname,
            "--append-child",
            dir,
            String(count),
          ],
          stdout: "piped",
          stderr: "inherit",
        }).output();
        if (!child.success) throw new Error("The append child process failed");
        const { peakRss, rssBefore } = JSON.parse(new TextDecoder().decode(child.stdout));
        report({
          suite: SUITE,
          name: `peak RSS appending ${((BASE_BYTES * factor) / MiB / 1024).toFixed(2)} GiB`,
          value: peakRss / MiB,
          unit: "MiB",
          baseline: `RSS before appending ${(rssBefore / MiB).toFixed(0)} MiB`,
          target: "< 200 MiB",
          met: peakRss < 200 * MiB,
        });
      } else await logAppend(dir, batch, count);
      const reopen: number[] = [];
      let lookupUs = 0;
      // Reopening takes a millisecond or two either way: the median of many runs keeps the
      // 8×/1× ratio from being decided by one scheduler hiccup.
      const REOPENS = 31;
      for (let i = 0; i < REOPENS; i++) {
        const t0 = performance.now();
        const log = await PartitionLog.open(dir);
        reopen.push(performance.now() - t0);
        if (i === REOPENS - 1) {
          const end = log.logEndOffset;
          for (let j = 0; j < 200; j++) await log.read(Math.floor(Math.random() * end), 64 * 1024);
          const n = 2000;
          const t1 = performance.now();
          for (let j = 0; j < n; j++) await log.read(Math.floor(Math.random() * end), 64 * 1024);
          lookupUs = ((performance.now() - t1) * 1000) / n;
        }
        await log.close();
      }
      figures.push({ reopenMs: median(reopen), lookupUs });
      report({
        suite: SUITE,
        name: `reopen after clean close, ${factor}× data (${
          ((BASE_BYTES * factor) / MiB).toFixed(0)
        } MiB)`,
        value: median(reopen),
        unit: "ms",
      });
      report({
        suite: SUITE,
        name: `random-offset read (64 KiB), ${factor}× data`,
        value: lookupUs,
        unit: "µs",
      });
      if (factor === 1) await removeQuietly(dir);
      else await removeQuietly(dir);
    }
    const reopenRatio = figures[1].reopenMs / figures[0].reopenMs;
    report({
      suite: SUITE,
      name: "reopen time 8× / 1×",
      value: reopenRatio,
      unit: "x",
      target: "<= 1.5",
      met: reopenRatio <= 1.5,
    });
    const lookupRatio = figures[1].lookupUs / figures[0].lookupUs;
    report({
      suite: SUITE,
      name: "random-offset read 8× / 1×",
      value: lookupRatio,
      unit: "x",
      target: "<= 1.5",
      met: lookupRatio <= 1.5,
    });
  } finally {
    await removeQuietly(root);
  }
}

/** Child mode: append `count` 64 KiB batches to `dir`, print peak RSS as JSON. */
async function appendChild(dir: string, count: number): Promise<void> {
  const { batch } = batchOf(1024, 64 * 1024);
  const rssBefore = Deno.memoryUsage().rss;
  let peakRss = rssBefore;
  await logAppend(dir, batch, count, (i) => {
    if (i % 16 === 0) peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  });
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  console.log(JSON.stringify({ peakRss, rssBefore }));
}

if (import.meta.main && Deno.args[0] === "--append-child") {
  await appendChild(Deno.args[1], Number(Deno.args[2]));
}
