/**
 * The rebalance listeners run one after the other: when the session rule stops all work, its
 * `onRevoked` may still be running (committing, flushing) when the next group answer grants
 * the same partitions again. Their `onAssigned` and their records must wait until that
 * `onRevoked` returned; otherwise an application that drops a partition's state in
 * `onRevoked` gets records of a partition it no longer has state for (the streams app
 * crashed with "No task for partition 0" that way). Real broker process, heartbeats cut
 * through the client's `fetch` option.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { produceNumbered, Watch } from "./_group_helpers.ts";

Deno.test("onAssigned and records wait for an onRevoked still running after a lost session", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  const admin = rill.admin();
  await admin.createTopic({ topic: "order", numPartitions: 1 });
  await produceNumbered(rill, "order", 1, 3);

  let blocked = false;
  let answeredSinceUnblock = 0;
  const watch = new Watch();
  const zrill = new Rill({
    brokers: [broker.url],
    retry: { retries: 0 },
    fetch: async (input, init) => {
      const url = String(input);
      const group = url.includes("/groups/g-order/members");
      if (blocked && url.includes("/heartbeat")) throw new TypeError("network down (test)");
      const res = await fetch(input, init);
      if (group && !blocked && res.ok) {
        answeredSinceUnblock++;
        watch.changed();
      }
      return res;
    },
  });

  const events: string[] = [];
  let revoking = false;
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  let revocations = 0;
  const delivered: { offset: number; whileRevoking: boolean }[] = [];
  const consumer = zrill.consumer({
    groupId: "g-order",
    sessionTimeoutMs: 1000,
    maxWaitMs: 200,
    onAssigned: (ps) => {
      events.push(`assigned ${ps.map((p) => p.partition)}${revoking ? " while revoking" : ""}`);
      watch.changed();
    },
    onRevoked: async (ps) => {
      events.push(`revoked ${ps.map((p) => p.partition)}`);
      revocations++;
      revoking = true;
      watch.changed();
      if (revocations === 1) await gate; // the first (session lost) revocation is slow
      revoking = false;
      events.push("revoked done");
    },
  });
  await consumer.subscribe({ topics: ["order"], fromBeginning: true });
  await consumer.run({
    eachMessage: ({ message }) => {
      delivered.push({ offset: message.offset, whileRevoking: revoking });
      watch.changed();
    },
  });
  try {
    await watch.until(() => delivered.length >= 3, "the first 3 records");

    blocked = true; // no heartbeat answered for sessionTimeoutMs: the session rule fires
    await watch.until(() => revocations === 1, "the session rule's onRevoked");
    const deliveredBefore = delivered.length;
    answeredSinceUnblock = 0;
    blocked = false;
    // The member is answered again (rejoined or its old session still valid): the answer
    // grants partition 0 while the first onRevoked still runs.
    await watch.until(() => answeredSinceUnblock >= 4, "4 group answers after the cut");
    await produceNumbered(rill, "order", 1, 2, 3);
    await watch.until(() => answeredSinceUnblock >= 8, "8 group answers after the cut");
    assert.deepEqual(events, ["assigned 0", "revoked 0"], "nothing while onRevoked runs");
    assert.equal(delivered.length, deliveredBefore, "no record delivered while onRevoked runs");

    openGate();
    await watch.until(() => delivered.some((d) => d.offset === 4), "the new records");
    assert.deepEqual(events.slice(0, 4), ["assigned 0", "revoked 0", "revoked done", "assigned 0"]);
    assert.ok(!events.some((e) => e.includes("while revoking")), events.join("; "));
    assert.deepEqual(delivered.filter((d) => d.whileRevoking), []);
  } finally {
    openGate();
    await consumer.disconnect();
  }
});
