import assert from "node:assert/strict";
import { Broker } from "../../src/broker/broker.ts";
import { fetchTurns } from "../../src/broker/fetch_session.ts";
import { LoopTurn } from "../../src/broker/time_slice.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

// Work started in one turn of the event loop (the long polls one append wakes) runs at most
// a budget per turn: the loop turns (timers, I/O, /healthz) before the rest.

function spin(ms: number): void {
  const t = performance.now();
  while (performance.now() - t < ms) { /* busy, as a read and send of an answer */ }
}

/**
 * Runs `n` pieces of `ms` each, all started in this turn, each checking the turn first;
 * `waits[i]`: how many times piece i was put off.
 */
function pieces(
  turn: LoopTurn,
  n: number,
  ms: number,
  log: string[],
  waits: number[] = [],
): Promise<void>[] {
  return Array.from({ length: n }, async (_, i) => {
    waits[i] = 0;
    while (turn.due) {
      waits[i]++;
      await turn.next();
    }
    spin(ms);
    log.push(`piece ${i}`);
  });
}

Deno.test("LoopTurn: pieces past the turn's budget wait for the loop to turn, in order", async () => {
  const turn = new LoopTurn(5);
  const log: string[] = [];
  // A timer armed before the pieces start runs as soon as the loop turns.
  const timer = new Promise<void>((resolve) =>
    setTimeout(() => {
      log.push("timer");
      resolve();
    }, 0)
  );
  const waits: number[] = [];
  await Promise.all([...pieces(turn, 10, 2, log, waits), timer]);
  const at = log.indexOf("timer");
  assert.ok(at > 0 && at < log.length - 1, `the timer ran between the pieces: ${log}`);
  assert.deepEqual(
    log.filter((x) => x !== "timer"),
    Array.from({ length: 10 }, (_, i) => `piece ${i}`),
  );
  // Each piece put off waited once, until its turn: none was woken to be put off again.
  assert.ok(waits.some((w) => w === 1), `some pieces were put off: ${waits}`);
  assert.ok(waits.every((w) => w <= 1), `no piece was put off twice: ${waits}`);
  assert.equal(turn.deferred, waits.reduce((a, b) => a + b, 0));
});

Deno.test("LoopTurn: pieces within the budget all run in the turn they started in", async () => {
  const turn = new LoopTurn(1_000);
  const log: string[] = [];
  const timer = new Promise<void>((resolve) =>
    setTimeout(() => {
      log.push("timer");
      resolve();
    }, 0)
  );
  await Promise.all([...pieces(turn, 10, 0, log), timer]);
  assert.equal(log.indexOf("timer"), 10, `no piece waited for the timer: ${log}`);
  assert.equal(turn.deferred, 0);
});

Deno.test("long polls woken by one append are answered over several turns, each with the records", async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({
    id: 1,
    dataDir: dir.path,
    kv: `${dir.path}/meta.kv`,
    advertisedUrl: "http://broker-1.test",
    log: () => {},
  });
  const budget = fetchTurns.budgetMs;
  try {
    await broker.createTopic({ name: "t", partitions: 1 });
    const polls = Array.from({ length: 20 }, () =>
      broker.fetchMany({
        partitions: [{ topic: "t", partition: 0, offset: 0, maxBytes: 1 << 20 }],
        maxWaitMs: 60_000,
        minBytes: 1,
      }));
    // Each answer its own turn: the loop turns between any two of them.
    fetchTurns.budgetMs = 0;
    const deferred = fetchTurns.deferred;
    let timerFired = false;
    const answered: boolean[] = [];
    const tracked = polls.map((p) => p.then((a) => (answered.push(timerFired), a)));
    await broker.produceBatches("t", 0, encodeBatch([{ value: new TextEncoder().encode("x") }]), 1);
    setTimeout(() => timerFired = true, 0);
    const answers = await Promise.all(tracked);
    for (const a of answers) {
      assert.equal(a.partitions[0].nextOffset, 1);
      assert.ok(a.partitions[0].bytes.length > 0);
      a.release();
    }
    assert.ok(fetchTurns.deferred > deferred, "some answers waited for a later turn");
    assert.ok(answered.includes(true), "a timer armed after the append ran before the last answer");
  } finally {
    fetchTurns.budgetMs = budget;
    await broker.close();
  }
});
