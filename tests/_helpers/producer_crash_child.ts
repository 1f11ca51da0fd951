/**
 * Child process of the idempotent producer crash test: opens the log in `Deno.args[0]`
 * (small segments, so that it rolls and takes producer snapshots), continues producer 7's
 * sequence from the state the log recovered, prints `start <sequence>`, then appends
 * batches of 1..3 records one at a time, printing `<baseSequence> <count> <baseOffset>
 * <lastOffset>` for each acknowledged one, until it is killed (or after 100 000 appends).
 *
 * @module
 */
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { PartitionLog } from "../../src/storage/mod.ts";

const [dir] = Deno.args;
const encoder = new TextEncoder();
const log = await PartitionLog.open(dir, { segmentBytes: 2048, indexIntervalBytes: 256 });
const last = log.producerState(7)?.batches.at(-1);
let sequence = last ? last.lastSequence + 1 : 0;
console.log(`start ${sequence}`);
for (let i = 0; i < 100_000; i++) {
  const count = 1 + (i % 3);
  const records = Array.from({ length: count }, (_, j) => ({
    value: encoder.encode(`s${sequence + j}`),
  }));
  const batch = encodeBatch(records, { producerId: 7, producerEpoch: 0, baseSequence: sequence });
  const r = await log.append(batch);
  if (r.duplicate) throw new Error(`sequence ${sequence} was taken as a duplicate`);
  console.log(`${sequence} ${count} ${r.baseOffset} ${r.lastOffset}`);
  sequence += count;
}
await log.close();
