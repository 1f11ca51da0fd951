/**
 * Random sequences of append, read, truncateTo, deleteRecordsBefore, roll and reopen (clean
 * or after a simulated crash) against an in-memory model of the log.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { batchOf, readAll, recordsOf } from "./_fixtures.ts";

type Op =
  | { kind: "append"; count: number; pad: number }
  | { kind: "read"; at: number; maxBytes: number }
  | { kind: "truncate"; at: number }
  | { kind: "deleteBefore"; at: number }
  | { kind: "roll" }
  | { kind: "reopen"; crash: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      count: fc.integer({ min: 1, max: 4 }),
      pad: fc.integer({ min: 0, max: 120 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("read" as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      maxBytes: fc.integer({ min: 1, max: 1500 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("truncate" as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("deleteBefore" as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "roll" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("reopen" as const), crash: fc.boolean() }),
  },
);

interface ModelBatch {
  base: number;
  values: string[];
}

const CONFIG = { segmentBytes: 700, indexIntervalBytes: 100 };

Deno.test("PartitionLog behaves as an in-memory model under random operations", async () => {
  await using root = await tempDir();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
      const dir = `${root.path}/run-${run++}`;
      let log = await PartitionLog.open(dir, CONFIG);
      let batches: ModelBatch[] = [];
      let start = 0;
      let counter = 0;
      const end = () =>
        batches.length === 0
          ? start
          : batches[batches.length - 1].base + batches[batches.length - 1].values.length;
      const valueAt = (offset: number) => {
        const b = batches.find((x) => x.base <= offset && offset < x.base + x.values.length)!;
        return b.values[offset - b.base];
      };
      const pick = (at: number) =>
        start + Math.min(Math.floor(at * (end() - start + 1)), end() - start);
      try {
        for (const op of ops) {
          switch (op.kind) {
            case "append": {
              const values = Array.from(
                { length: op.count },
                (_, j) => `m${counter}-${j}-${"q".repeat(op.pad)}`,
              );
              counter++;
              const r = await log.append(batchOf(values));
              assert.equal(r.baseOffset, end());
              batches.push({ base: r.baseOffset, values });
              break;
            }
            case "read": {
              const offset = pick(op.at);
              const r = await log.read(offset, op.maxBytes);
              if (offset === end()) {
                assert.equal(r.bytes.length, 0);
                break;
              }
              const records = recordsOf(r.bytes);
              assert.ok(records.length > 0);
              assert.ok(records[0].offset <= offset && offset < r.nextOffset);
              records.forEach((rec, i) => {
                assert.equal(rec.offset, records[0].offset + i);
                assert.equal(rec.value, valueAt(rec.offset));
              });
              assert.equal(r.nextOffset, records[records.length - 1].offset + 1);
              break;
            }
            case "truncate": {
              const offset = pick(op.at);
              await log.truncateTo(offset);
              const i = batches.findIndex((b) => b.base + b.values.length > offset);
              if (i >= 0) {
                // The whole batch holding the offset goes; a cut at or below the log start
                // empties the log, which restarts at the log start offset.
                batches = batches[i].base <= start ? [] : batches.slice(0, i);
              }
              break;
            }
            case "deleteBefore": {
              const offset = pick(op.at);
              await log.deleteRecordsBefore(offset);
              start = Math.max(start, offset);
              break;
            }
            case "roll":
              await log.roll();
              break;
            case "reopen":
              await log.close();
              if (op.crash) {
                await Deno.remove(`${dir}/.clean-shutdown`);
                await Deno.remove(`${dir}/recovery-point-offset-checkpoint`);
              }
              log = await PartitionLog.open(dir, CONFIG);
              assert.equal(log.recovery.truncatedBytes, 0);
              break;
          }
          assert.equal(log.logEndOffset, end(), `log end after ${op.kind}`);
          assert.equal(log.logStartOffset, start, `log start after ${op.kind}`);
        }
        const all = await readAll(log);
        assert.deepEqual(
          all.map((r) => r.value),
          Array.from({ length: end() - start }, (_, i) => valueAt(start + i)),
        );
      } finally {
        await log.delete();
      }
    }),
    { numRuns: 40 },
  );
});
