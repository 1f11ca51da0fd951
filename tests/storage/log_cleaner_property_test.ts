/**
 * Model test of compaction: random sequences of keyed appends (tombstones included), rolls,
 * compaction passes and reopens (clean or after a simulated crash). Invariants: every record
 * read is the one appended at its offset; every key's latest record is always there; and
 * after a pass that mapped every closed segment, the compacted part holds exactly the last
 * record of each key ("compacted log == last value per key").
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { copyDir } from "./_fixtures.ts";
import { compactedModel, keyedBatch, type KeyedRecord, readKeyed } from "./_compaction_fixtures.ts";

type Op =
  | { kind: "append"; records: { key: number; tombstone: boolean; pad: number }[] }
  | { kind: "roll" }
  | { kind: "clean"; maxDirtyBytes: number }
  | { kind: "reopen"; crash: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      records: fc.array(
        fc.record({
          key: fc.integer({ min: 0, max: 5 }),
          tombstone: fc.integer({ min: 0, max: 6 }).map((n) => n === 0),
          pad: fc.integer({ min: 0, max: 60 }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "roll" as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("clean" as const),
      maxDirtyBytes: fc.constantFrom(1, 500, 1 << 30),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("reopen" as const), crash: fc.boolean() }),
  },
);

const CONFIG = {
  compact: true,
  segmentBytes: 250,
  indexIntervalBytes: 100,
  minCleanableDirtyRatio: 0,
};

Deno.test("compaction keeps every key's latest record and, once it covers the log, only those", async () => {
  await using dir = await tempDir();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
      const path = `${dir.path}/run-${run++}`;
      let log = await PartitionLog.open(path, CONFIG);
      const appended: KeyedRecord[] = [];
      try {
        for (const op of ops) {
          if (op.kind === "append") {
            const records = op.records.map((r) => ({
              key: `k${r.key}`,
              value: r.tombstone ? null : `v${appended.length}-${"x".repeat(r.pad)}`,
            }));
            const { baseOffset } = await log.append(keyedBatch(records));
            records.forEach((r, i) => appended.push({ offset: baseOffset + i, ...r }));
          } else if (op.kind === "roll") {
            await log.roll();
          } else if (op.kind === "clean") {
            const result = await log.clean({ maxDirtyBytes: op.maxDirtyBytes });
            if (result && op.maxDirtyBytes === 1 << 30) {
              // Every closed segment was mapped: below the checkpoint, one record per key.
              const below = (await readKeyed(log)).filter((r) =>
                r.offset < result.firstDirtyOffset
              );
              assert.deepEqual(
                below,
                compactedModel(appended, result.firstDirtyOffset).filter((r) =>
                  r.offset < result.firstDirtyOffset
                ),
              );
            }
          } else {
            if (op.crash) {
              await log.settled();
              await copyDir(path, `${path}-crash`);
              await log.close();
              await Deno.remove(path, { recursive: true });
              await Deno.rename(`${path}-crash`, path);
            } else await log.close();
            log = await PartitionLog.open(path, CONFIG);
          }
          const got = await readKeyed(log);
          const byOffset = new Map(appended.map((r) => [r.offset, r]));
          for (const r of got) assert.deepEqual(r, byOffset.get(r.offset), `offset ${r.offset}`);
          const present = new Set(got.map((r) => r.offset));
          const latest = new Map<string, KeyedRecord>();
          for (const r of appended) latest.set(r.key!, r);
          for (const r of latest.values()) {
            assert.ok(present.has(r.offset), `the latest record of ${r.key} (${r.offset})`);
          }
        }
        assert.equal(log.logEndOffset, appended.length);
      } finally {
        await log.close();
        await Deno.remove(path, { recursive: true });
      }
    }),
    { numRuns: 150 },
  );
});
