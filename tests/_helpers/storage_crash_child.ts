/**
 * Child process of the storage crash test: opens the log in `Deno.args[0]` with flush
 * "always" and appends batches (up to 8 in flight) whose record values are
 * `<tag>-<i>-<j>`, printing `<baseOffset> <lastOffset> <tag>-<i>` for each acknowledged
 * append, until it is killed (or after 100 000 appends).
 *
 * @module
 */
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { PartitionLog } from "../../src/storage/mod.ts";

const [dir, tag] = Deno.args;
const encoder = new TextEncoder();
const log = await PartitionLog.open(dir, {
  flush: { mode: "always" },
  segmentBytes: 16 * 1024,
  indexIntervalBytes: 256,
});
const inFlight = new Set<Promise<void>>();
for (let i = 0; i < 100_000; i++) {
  const n = 1 + (i % 3);
  const records = Array.from({ length: n }, (_, j) => ({
    value: encoder.encode(`${tag}-${i}-${j}-${"z".repeat(i % 200)}`),
  }));
  const p = log.append(encodeBatch(records)).then((r) => {
    console.log(`${r.baseOffset} ${r.lastOffset} ${tag}-${i}`);
  });
  const tracked = p.finally(() => inFlight.delete(tracked));
  inFlight.add(tracked);
  if (inFlight.size >= 8) await Promise.race(inFlight);
}
await Promise.all(inFlight);
await log.close();
