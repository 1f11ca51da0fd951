/**
 * Random idempotent sends by two producers (new batches, retries of any earlier batch,
 * gaps, epoch bumps, plain batches), fired in bursts without waiting so that they share
 * group commits, with rolls and reopens (clean, or as after a crash: no clean-shutdown
 * marker, no snapshot at the log end) in between, against a model of Kafka's rules.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { RillError } from "../../src/protocol/errors.ts";
import { type AppendResult, PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { batchOf } from "./_fixtures.ts";
import { idemBatch, storedBatches } from "./_producer_fixtures.ts";

type Send =
  | { kind: "new"; p: number; count: number }
  | { kind: "retry"; p: number; back: number }
  | { kind: "gap"; p: number; by: number }
  | { kind: "bump"; p: number }
  | { kind: "plain" };
type Op = { kind: "burst"; sends: Send[] } | { kind: "roll" } | { kind: "reopen"; crash: boolean };

const producer = fc.integer({ min: 1, max: 2 });
const sendArb: fc.Arbitrary<Send> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("new" as const),
      p: producer,
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("retry" as const),
      p: producer,
      back: fc.integer({ min: 0, max: 7 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("gap" as const),
      p: producer,
      by: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("bump" as const), p: producer }) },
  { weight: 1, arbitrary: fc.constant({ kind: "plain" as const }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("burst" as const),
      sends: fc.array(sendArb, { minLength: 1, maxLength: 6 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "roll" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("reopen" as const), crash: fc.boolean() }),
  },
);

interface SentBatch {
  producerId: number;
  epoch: number;
  seq: number;
  count: number;
  baseOffset: number;
  lastOffset: number;
}

type Expect =
  | { ok: true; baseOffset: number; lastOffset: number; duplicate: boolean }
  | { ok: false; code: string };

/** Kafka's rules, applied in call order. */
class Model {
  end = 0;
  history = new Map<number, SentBatch[]>(); // every accepted batch per producer
  epoch = new Map<number, number>();
  stored: SentBatch[] = []; // every batch in the log, plain ones with producerId -1

  #accept(producerId: number, epoch: number, seq: number, count: number): Expect {
    const b = {
      producerId,
      epoch,
      seq,
      count,
      baseOffset: this.end,
      lastOffset: this.end + count - 1,
    };
    this.end += count;
    this.stored.push(b);
    if (producerId >= 0) {
      this.history.set(producerId, [...(this.history.get(producerId) ?? []), b]);
      this.epoch.set(producerId, epoch);
    }
    return { ok: true, baseOffset: b.baseOffset, lastOffset: b.lastOffset, duplicate: false };
  }

  #next(p: number): number {
    const last = this.history.get(p)?.at(-1);
    return last ? last.seq + last.count : 0;
  }

  /** Returns what the send is and what it should get. */
  apply(
    s: Send,
  ): { batch: { p: number; epoch: number; seq: number; count: number }; expect: Expect } {
    if (s.kind === "plain") {
      return {
        batch: { p: -1, epoch: -1, seq: -1, count: 1 },
        expect: this.#accept(-1, -1, -1, 1),
      };
    }
    const p = s.p;
    const epoch = this.epoch.get(p) ?? 0;
    const history = this.history.get(p) ?? [];
    if (s.kind === "new" || (s.kind === "retry" && history.length === 0)) {
      const count = s.kind === "new" ? s.count : 1;
      const seq = this.#next(p);
      return { batch: { p, epoch, seq, count }, expect: this.#accept(p, epoch, seq, count) };
    }
    if (s.kind === "bump") {
      return {
        batch: { p, epoch: epoch + 1, seq: 0, count: 1 },
        expect: this.#accept(p, epoch + 1, 0, 1),
      };
    }
    if (s.kind === "gap") {
      const seq = this.#next(p) + s.by;
      const batch = { p, epoch, seq, count: 1 };
      if (history.length === 0) return { batch, expect: this.#accept(p, epoch, seq, 1) };
      return { batch, expect: { ok: false, code: "OUT_OF_ORDER_SEQUENCE_NUMBER" } };
    }
    const target = history[Math.max(0, history.length - 1 - s.back)];
    const batch = { p, epoch: target.epoch, seq: target.seq, count: target.count };
    if (target.epoch < epoch) {
      return { batch, expect: { ok: false, code: "INVALID_PRODUCER_EPOCH" } };
    }
    const window = history.filter((b) => b.epoch === epoch).slice(-5);
    if (window.includes(target)) {
      return {
        batch,
        expect: {
          ok: true,
          baseOffset: target.baseOffset,
          lastOffset: target.lastOffset,
          duplicate: true,
        },
      };
    }
    return { batch, expect: { ok: false, code: "OUT_OF_ORDER_SEQUENCE_NUMBER" } };
  }
}

const CONFIG = { segmentBytes: 500 };

Deno.test("idempotent appends follow Kafka's duplicate, sequence and epoch rules (model)", async () => {
  await using root = await tempDir();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
      const dir = `${root.path}/run-${run++}`;
      let log = await PartitionLog.open(dir, CONFIG);
      const model = new Model();
      try {
        for (const op of ops) {
          if (op.kind === "roll") await log.roll();
          else if (op.kind === "reopen") {
            await log.close();
            if (op.crash) {
              await Deno.remove(`${dir}/.clean-shutdown`);
              const snapshot = `${dir}/${String(model.end).padStart(20, "0")}.snapshot`;
              await Deno.remove(snapshot).catch(() => {});
            }
            log = await PartitionLog.open(dir, CONFIG);
          } else {
            const planned = op.sends.map((s) => model.apply(s));
            const settled = await Promise.allSettled(
              planned.map(({ batch }) =>
                batch.p < 0 ? log.append(batchOf(["plain"])) : log.append(
                  idemBatch({
                    producerId: batch.p,
                    producerEpoch: batch.epoch,
                    baseSequence: batch.seq,
                    count: batch.count,
                  }),
                )
              ),
            );
            settled.forEach((s, i) => {
              const { expect, batch } = planned[i];
              const what = `send ${JSON.stringify(op.sends[i])} as ${JSON.stringify(batch)}`;
              if (expect.ok) {
                assert.equal(
                  s.status,
                  "fulfilled",
                  `${what}: ${(s as PromiseRejectedResult).reason}`,
                );
                const r = (s as PromiseFulfilledResult<AppendResult>).value;
                assert.deepEqual(
                  [r.baseOffset, r.lastOffset, r.duplicate ?? false],
                  [expect.baseOffset, expect.lastOffset, expect.duplicate],
                  what,
                );
              } else {
                assert.equal(s.status, "rejected", what);
                const e = (s as PromiseRejectedResult).reason;
                assert.ok(e instanceof RillError);
                assert.equal(e.code, expect.code, what);
              }
            });
          }
          assert.equal(log.logEndOffset, model.end);
        }
        const stored = await storedBatches(log);
        assert.deepEqual(
          stored.map((
            b,
          ) => [b.baseOffset, b.lastOffset, b.producerId, b.producerEpoch, b.baseSequence]),
          model.stored.map((b) => [b.baseOffset, b.lastOffset, b.producerId, b.epoch, b.seq]),
        );
      } finally {
        await log.delete();
      }
    }),
    { numRuns: 40 },
  );
});
