/**
 * Parallelism through the consumer group: two instances of one application split four
 * partitions; when one is killed (SIGKILL), its tasks move to the other with their state
 * (restored from the changelogs), and the results stay correct.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { spawnLines } from "../_helpers/child_lines.ts";
import { countWords, latestPerKey, waitFor } from "./_streams_helpers.ts";

const CHILD = new URL("../_helpers/streams_word_count_child.ts", import.meta.url).pathname;

Deno.test("two instances split four partitions; killing one moves its state and work", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  await rill.admin().createTopics({
    topics: [{ topic: "text", numPartitions: 4 }, { topic: "totals", numPartitions: 4 }],
  });
  const first = Array.from({ length: 4000 }, (_, i) => `k${i % 101} m${i % 13}`);
  const second = Array.from({ length: 4000 }, (_, i) => `k${i % 103} n${i % 7}`);
  const producer = rill.producer();
  await producer.send({ topic: "text", messages: first.map((value) => ({ value })) });
  const args = [broker.url, "split", "text", "totals", "at_least_once"];
  await using a = spawnLines(CHILD, args);
  await using b = spawnLines(CHILD, args);
  const tasksOf = async (c: typeof a) => {
    const line = await c.waitLine((l) => /^tasks \d,\d$/.test(l));
    return line.slice(6).split(",").map(Number);
  };
  const [ta, tb] = await Promise.all([tasksOf(a), tasksOf(b)]);
  assert.deepEqual([...ta, ...tb].sort(), [0, 1, 2, 3], "each instance runs two of the four tasks");
  const firstCounts = countWords(first);
  await waitFor(
    async () => {
      const got = await latestPerKey(broker.url, "totals");
      return [...firstCounts].every(([w, n]) => got.get(w) === n);
    },
    "the first half counted by both instances",
    120_000,
  ); // hang guards, not speed checks

  a.kill("SIGKILL");
  await a.status;
  await producer.send({ topic: "text", messages: second.map((value) => ({ value })) });
  await b.waitLine((l) => l === "tasks 0,1,2,3", 30_000);
  const all = countWords([...first, ...second]);
  await waitFor(
    async () => {
      const got = await latestPerKey(broker.url, "totals");
      return got.size === all.size && [...all].every(([w, n]) => got.get(w) === n);
    },
    "the counts over both halves, by the survivor",
    120_000,
  );
});
