/**
 * Word count over 100,000 lines with the processor (a child process) killed with SIGKILL
 * twice in the middle and restarted: the final counts are exact, and with exactly-once
 * every count update appears once in the output (no duplicate written after a crash).
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { spawnLines } from "../_helpers/child_lines.ts";
import { countWords, readTopic } from "./_streams_helpers.ts";

const CHILD = new URL("../_helpers/streams_word_count_child.ts", import.meta.url).pathname;
const LINES = 100_000;

Deno.test("word count survives two SIGKILLs mid-stream with exact counts and no duplicate output", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  await rill.admin().createTopics({
    topics: [{ topic: "lines", numPartitions: 2 }, { topic: "counts", numPartitions: 2 }],
  });
  const lines = Array.from({ length: LINES }, (_, i) => `w${i % 997} V${(i * 7) % 89}`);
  const producer = rill.producer();
  for (let i = 0; i < LINES; i += 10_000) {
    await producer.send({
      topic: "lines",
      messages: lines.slice(i, i + 10_000).map((value) => ({ value })),
    });
  }
  const args = [broker.url, "wc", "lines", "counts", "exactly_once"];
  // Two runs killed mid-stream, at growing progress.
  for (const killAt of [60_000, 180_000]) {
    await using child = spawnLines(CHILD, args);
    await child.waitLine(/^started$/);
    // A hang guard only (a loaded machine processes slowly), not a speed assertion.
    await child.waitLine(
      (l) => l.startsWith("processed ") && Number(l.slice(10)) >= killAt,
      180_000,
    );
    child.kill("SIGKILL");
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL");
  }
  // The last run is a bounded job: it finishes what is left and exits.
  {
    await using child = spawnLines(CHILD, [...args, "bounded"]);
    await child.waitLine(/^finished$/, 120_000);
    await child.status;
  }
  const want = countWords(lines);
  const out = await readTopic(broker.url, "counts");
  const latest = new Map<string, string>();
  const seen = new Map<string, number[]>();
  for (const r of out) {
    latest.set(r.key!, r.value!);
    const list = seen.get(r.key!) ?? [];
    list.push(Number(r.value));
    seen.set(r.key!, list);
  }
  assert.equal(latest.size, want.size);
  for (const [word, n] of want) assert.equal(latest.get(word), n, `count of "${word}"`);
  // exactly-once: each word's updates are 1, 2, …, n once each, in order
  for (const [word, values] of seen) {
    const n = Number(want.get(word));
    assert.deepEqual(values, Array.from({ length: n }, (_, i) => i + 1), `updates of "${word}"`);
  }
  // the repartition topic holds each word once
  const topics = await rill.admin().listTopics();
  const internal = topics.filter((t) => t.startsWith("wc-") && t.endsWith("-repartition"));
  assert.equal(internal.length, 1);
  const repartition = await rill.admin().fetchTopicOffsets(internal[0]);
  assert.equal(repartition.reduce((s, p) => s + p.high, 0), LINES * 2);
});
