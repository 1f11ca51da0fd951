/**
 * A consumer reading from an edge follower that is behind its leader: the follower answers
 * OFFSET_NOT_AVAILABLE for offsets it has not copied yet, and the consumer waits for the copy
 * (as for an empty fetch) instead of failing after its retries or resetting its position.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { openTestBroker } from "../http/_app.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("a consumer waits for a lagging follower's copy instead of failing or resetting", async () => {
  await using t = await openTestBroker();
  await t.broker.createTopic({ name: "lag", partitions: 1 });
  const batch = (from: number, n: number) =>
    encodeBatch(
      Array.from({ length: n }, (_, i) => ({ value: enc.encode(`r${from + i}`) })),
      { baseOffset: from },
    );
  await t.broker.produceBatches("lag", 0, batch(0, 3), 1);
  // The partition becomes an observer's copy: 3 records here, 6 committed on its leader.
  const copy = await t.broker.replica("lag", 0);
  copy.becomeFollower(copy.leaderEpoch, 2, true);
  copy.updateHighWatermark(6);

  const ac = new AbortController();
  let notYet = 0;
  const enough = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req, info) => {
      const res = await t.app.fetch(req, info);
      // Partition errors come inside a 200 multi-partition answer.
      if ((await res.clone().text()).includes('"code":"OFFSET_NOT_AVAILABLE"')) {
        if (++notYet === 4) enough.resolve();
      }
      return res;
    },
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    // One retry only: the follower's answers must not count as failures.
    const consumer = new Rill({ brokers: [url], retry: { retries: 1, initialRetryTime: 20 } })
      .consumer({ maxWaitMs: 100 });
    await consumer.assign([{ topic: "lag", partition: 0, offset: 4 }]);
    const got: string[] = [];
    const done = Promise.withResolvers<void>();
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push(`${message.offset}:${dec.decode(message.value!)}`);
        if (got.length === 2) done.resolve();
        await Promise.resolve();
      },
    });
    // A consumer that stops (its error) ends the wait and fails the test.
    const stopped = consumer.finished();
    await Promise.race([enough.promise, stopped]);
    // The copy catches up.
    await copy.appendAsFollower(batch(3, 3), 6);
    await Promise.race([done.promise, stopped]);
    await consumer.stop();
    assert.deepEqual(got, ["4:r4", "5:r5"]);
  } finally {
    ac.abort();
    await server.finished;
  }
});
