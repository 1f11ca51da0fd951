/**
 * Child process of the compaction crash test: opens the compacted log in `Deno.args[0]`
 * (fsync on every append, small segments) and appends one keyed record per batch — keys
 * `k0`…`k12`, values `<tag>-<i>` — printing `<offset> <key> <value>` for each acknowledged
 * append, with a compaction pass after every 10 appends (its own fsyncs and renames give a
 * kill many moments to land in), until it is killed (or after 100 000 appends).
 *
 * @module
 */
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { PartitionLog } from "../../src/storage/mod.ts";

const [dir, tag] = Deno.args;
const encoder = new TextEncoder();
const log = await PartitionLog.open(dir, {
  compact: true,
  flush: { mode: "always" },
  segmentBytes: 1024,
  indexIntervalBytes: 128,
  minCleanableDirtyRatio: 0.2,
});
for (let i = 0; i < 100_000; i++) {
  const key = `k${i % 13}`;
  const value = `${tag}-${i}`;
  const r = await log.append(
    encodeBatch([{ key: encoder.encode(key), value: encoder.encode(value) }]),
  );
  console.log(`${r.baseOffset} ${key} ${value}`);
  if (i % 10 === 9) await log.clean();
}
await log.close();
