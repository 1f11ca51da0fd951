/**
 * An idempotent producer's log killed with SIGKILL, round after round: each child
 * continues the sequence from the state its log recovered, and after each kill a copy of
 * the log (recovered in this process) recognises the acknowledged batches still in the
 * window as duplicates with their original offsets, and the whole log holds every sequence
 * exactly once, in order.
 */
import assert from "node:assert/strict";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { runUntilKilled } from "../_helpers/child_lines.ts";
import { copyDir } from "./_fixtures.ts";
import { idemBatch, storedBatches } from "./_producer_fixtures.ts";

const CHILD = new URL("../_helpers/producer_crash_child.ts", import.meta.url).pathname;

interface Ack {
  baseSequence: number;
  count: number;
  baseOffset: number;
  lastOffset: number;
}

/** Runs the child until it has acknowledged `killAfter` appends, then SIGKILLs it. */
async function runChild(dir: string, killAfter: number): Promise<{ start: number; acks: Ack[] }> {
  // The child's first line says where it starts; then a line per acknowledged append.
  const lines = await runUntilKilled(CHILD, [dir], killAfter + 1);
  const start = Number(lines.shift()!.split(" ")[1]);
  const acks = lines.map((line) => {
    const [baseSequence, count, baseOffset, lastOffset] = line.split(" ").map(Number);
    return { baseSequence, count, baseOffset, lastOffset };
  });
  return { start, acks };
}

Deno.test("producer state survives SIGKILL: retries stay duplicates, sequences stay whole", async () => {
  await using dir = await tempDir();
  const logDir = `${dir.path}/log`;
  let acked: Ack[] = [];
  for (let round = 0; round < 3; round++) {
    const killAfter = 10 + Math.floor(Math.random() * 60);
    const { start, acks } = await runChild(logDir, killAfter);
    assert.ok(acks.length >= killAfter);
    const lastAcked = acked.at(-1);
    // The child recovered the state: it continues after every batch acknowledged before
    // (and after any batch written but not acknowledged before the kill).
    assert.ok(
      start >= (lastAcked ? lastAcked.baseSequence + lastAcked.count : 0),
      `round ${round} started at sequence ${start}`,
    );
    acked = acks;
    const copy = `${dir.path}/check-${round}`;
    await copyDir(logDir, copy);
    const log = await PartitionLog.open(copy, { segmentBytes: 2048 });
    assert.equal(log.recovery.clean, false);
    const state = log.producerState(7)!;
    const inWindow = new Set(state.batches.map((b) => b.baseSequence));
    let retried = 0;
    for (const a of acked.slice(-5)) {
      if (!inWindow.has(a.baseSequence)) continue; // pushed out by unacknowledged batches
      const r = await log.append(
        idemBatch({
          producerId: 7,
          producerEpoch: 0,
          baseSequence: a.baseSequence,
          count: a.count,
        }),
      );
      assert.deepEqual(
        [r.duplicate, r.baseOffset, r.lastOffset],
        [true, a.baseOffset, a.lastOffset],
        `retry of acknowledged sequence ${a.baseSequence}`,
      );
      retried++;
    }
    assert.ok(retried >= 4, `at most one unacknowledged batch follows the last ack (${retried})`);
    const batches = await storedBatches(log);
    let sequence = 0;
    for (const b of batches) {
      assert.equal(b.producerId, 7);
      assert.equal(b.baseSequence, sequence, `the batch at offset ${b.baseOffset}`);
      sequence += b.lastOffset - b.baseOffset + 1;
    }
    assert.equal(sequence, log.logEndOffset, "one record per sequence, no duplicate, no gap");
    await log.delete();
  }
});
