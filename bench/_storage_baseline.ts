/**
 * The storage-only baseline of the broker and client benchmarks: the same batch appended
 * straight to a PartitionLog (default flush policy) in a temp dir for `seconds`.
 *
 * @module
 */
import { PartitionLog } from "../src/storage/mod.ts";

/**
 * Measures how many records a second the storage engine alone appends.
 *
 * @param batch one encoded batch (a copy is appended each time)
 * @param records how many records it holds
 * @param seconds how long to append
 * @returns records per second
 */
export async function storageAppendRate(
  batch: Uint8Array,
  records: number,
  seconds: number,
): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-storage-" });
  try {
    const log = await PartitionLog.open(dir);
    let n = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      await log.append(batch.slice());
      n += records;
    }
    const rate = n / ((performance.now() - t0) / 1000);
    await log.close();
    return rate;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
