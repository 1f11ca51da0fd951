/**
 * `consumer.disconnect()` in a group, against a broker process (kafkajs's semantics):
 * called from outside while a handler runs, it waits for the handler, commits what was
 * processed (the record in hand included) and leaves the group before it resolves, so the
 * broker shows the commit and an empty group the moment it does. Called from inside a
 * handler, even awaited, it does not deadlock: the consumer stops once the handler returns.
 * Called while the consumer's rejoin is on the wire, it still resolves, and the member that
 * late join made leaves too.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { produceNumbered, within } from "./_group_helpers.ts";

/** A promise with its resolve function. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

Deno.test("consumer.disconnect() in a group against a broker process", async (t) => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  const admin = rill.admin();

  /** The group's committed offset of partition 0 and its member count, as the broker says. */
  const brokerView = async (group: string) => {
    const d = await admin.describeGroup(group);
    return { offset: d.offsets.find((o) => o.partition === 0)?.offset, members: d.members.length };
  };

  await t.step(
    "from outside mid-eachMessage: resolves after the running record is committed and the member left",
    async () => {
      await admin.createTopic({ topic: "out-msg", numPartitions: 1 });
      await produceNumbered(rill, "out-msg", 1, 10);
      const consumer = rill.consumer({ groupId: "g-out-msg", maxWaitMs: 200 });
      const started = gate();
      const release = gate();
      const handled: number[] = [];
      let returned = false;
      await consumer.subscribe({ topics: ["out-msg"], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          if (message.offset === 3) {
            started.open();
            await release.promise;
            returned = true;
          }
          handled.push(message.offset);
        },
      });
      await started.promise;
      const disconnected = consumer.disconnect();
      release.open();
      await disconnected;
      assert.ok(returned, "disconnect() resolved before the running handler returned");
      assert.deepEqual(handled, [0, 1, 2, 3]);
      // no polling: the broker already has both the commit and the leave
      assert.deepEqual(await brokerView("g-out-msg"), { offset: 4, members: 0 });
      await consumer.finished();
    },
  );

  await t.step(
    "from outside mid-eachBatch: resolves after the running batch is committed and the member left",
    async () => {
      await admin.createTopic({ topic: "out-batch", numPartitions: 1 });
      await produceNumbered(rill, "out-batch", 1, 10);
      const consumer = rill.consumer({ groupId: "g-out-batch", maxWaitMs: 200 });
      const started = gate();
      const release = gate();
      let lastOffset = -1;
      let calls = 0;
      let returned = false;
      await consumer.subscribe({ topics: ["out-batch"], fromBeginning: true });
      await consumer.run({
        eachBatch: async ({ batch }) => {
          calls++;
          lastOffset = batch.lastOffset();
          started.open();
          await release.promise;
          returned = true;
        },
      });
      await started.promise;
      const disconnected = consumer.disconnect();
      release.open();
      await disconnected;
      assert.ok(returned, "disconnect() resolved before the running handler returned");
      assert.equal(calls, 1);
      assert.deepEqual(await brokerView("g-out-batch"), { offset: lastOffset + 1, members: 0 });
    },
  );

  await t.step("a second disconnect() while the first waits also waits", async () => {
    await admin.createTopic({ topic: "twice", numPartitions: 1 });
    await produceNumbered(rill, "twice", 1, 5);
    const consumer = rill.consumer({ groupId: "g-twice", maxWaitMs: 200 });
    const started = gate();
    const release = gate();
    await consumer.subscribe({ topics: ["twice"], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (message.offset !== 1) return;
        started.open();
        await release.promise;
      },
    });
    await started.promise;
    const first = consumer.disconnect();
    const second = consumer.disconnect();
    release.open();
    await second;
    assert.deepEqual(await brokerView("g-twice"), { offset: 2, members: 0 });
    await first;
  });

  await t.step(
    "from inside a handler, awaited after an await: no deadlock; stops once the handler returns",
    async () => {
      await admin.createTopic({ topic: "in-await", numPartitions: 1 });
      await produceNumbered(rill, "in-await", 1, 10);
      const consumer = rill.consumer({ groupId: "g-in-await", maxWaitMs: 200 });
      const handled: number[] = [];
      await consumer.subscribe({ topics: ["in-await"], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          handled.push(message.offset);
          if (message.offset !== 4) return;
          await Promise.resolve();
          await consumer.disconnect();
        },
      });
      await consumer.finished();
      assert.deepEqual(handled, [0, 1, 2, 3, 4]);
      assert.deepEqual(await brokerView("g-in-await"), { offset: 5, members: 0 });
      // and a disconnect() from outside afterwards has nothing left to wait for
      await consumer.disconnect();
    },
  );

  await t.step("from inside a handler's synchronous part: no deadlock", async () => {
    await admin.createTopic({ topic: "in-sync", numPartitions: 1 });
    await produceNumbered(rill, "in-sync", 1, 10);
    const consumer = rill.consumer({ groupId: "g-in-sync", maxWaitMs: 200 });
    await consumer.subscribe({ topics: ["in-sync"], fromBeginning: true });
    let inner: Promise<void> | null = null;
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        resolveOffset(batch.messages[1].offset);
        inner = consumer.disconnect();
        await inner;
      },
      eachBatchAutoResolve: false,
    });
    await consumer.finished();
    assert.ok(inner !== null);
    assert.deepEqual(await brokerView("g-in-sync"), { offset: 2, members: 0 });
  });

  await t.step(
    "while a rejoin is on the wire: resolves, and the member the late join made leaves too",
    async () => {
      await admin.createTopic({ topic: "rejoin", numPartitions: 1 });
      await produceNumbered(rill, "rejoin", 1, 1);
      // The consumer's own fetch (so it speaks HTTP): holds the answer of a join while
      // `holdJoins`, until the test has called disconnect() and seen stop() close its fetch
      // session (a request stop() sends before it leaves the group).
      let holdJoins = false;
      const joinOnWire = gate();
      const releaseJoin = gate();
      const stopping = gate();
      const zrill = new Rill({
        brokers: [broker.url],
        fetch: async (input, init) => {
          const url = String(input);
          const join = holdJoins && init?.method === "POST" && url.endsWith("/members");
          const closing = url.endsWith("/v1/fetch") && String(init?.body).includes('"epoch":-1');
          const res = await fetch(input, init);
          if (join) {
            joinOnWire.open();
            await releaseJoin.promise;
          }
          if (closing) stopping.open();
          return res;
        },
      });
      const seen = gate();
      let revoked = 0;
      const consumer = zrill.consumer({
        groupId: "g-rejoin",
        maxWaitMs: 200,
        sessionTimeoutMs: 3000,
        onRevoked: () => void revoked++,
      });
      await consumer.subscribe({ topics: ["rejoin"], fromBeginning: true });
      await consumer.run({ eachMessage: () => seen.open() });
      await within(seen.promise, 10_000, "the first record");
      // The broker drops the member (as when its session expired): the next heartbeat is
      // answered UNKNOWN_MEMBER_ID, and the consumer stops its work and joins again.
      holdJoins = true;
      const [{ memberId }] = (await admin.describeGroup("g-rejoin")).members;
      const removed = await fetch(`${broker.url}/v1/groups/g-rejoin/members/${memberId}`, {
        method: "DELETE",
      });
      await removed.body?.cancel();
      assert.ok(removed.ok, `removing the member answered ${removed.status}`);
      await within(joinOnWire.promise, 10_000, "the rejoin");
      assert.equal(revoked, 1, "the dropped member's work stopped before it joined again");
      const disconnected = consumer.disconnect();
      await within(stopping.promise, 10_000, "stop() closing its fetch session");
      releaseJoin.open(); // the join is answered after the consumer began to leave
      await within(disconnected, 10_000, "disconnect() during a rejoin");
      // (nothing committed: the dropped member's work stopped without a commit)
      assert.deepEqual(await brokerView("g-rejoin"), { offset: undefined, members: 0 });
    },
  );

  await t.step("while run()'s join is on the wire: resolves once that member left", async () => {
    await admin.createTopic({ topic: "joining", numPartitions: 1 });
    const joinOnWire = gate();
    const releaseJoin = gate();
    const zrill = new Rill({
      brokers: [broker.url],
      // the broker takes the join; its answer is held until released
      fetch: async (input, init) => {
        const join = init?.method === "POST" && String(input).endsWith("/members");
        const res = await fetch(input, init);
        if (join) {
          joinOnWire.open();
          await releaseJoin.promise;
        }
        return res;
      },
    });
    const consumer = zrill.consumer({ groupId: "g-joining", maxWaitMs: 200 });
    await consumer.subscribe({ topics: ["joining"], fromBeginning: true });
    const running = consumer.run({ eachMessage: () => {} });
    await within(joinOnWire.promise, 10_000, "the join");
    assert.equal((await brokerView("g-joining")).members, 1);
    const disconnected = consumer.disconnect();
    releaseJoin.open();
    await within(disconnected, 10_000, "disconnect() during run()'s join");
    assert.equal((await brokerView("g-joining")).members, 0);
    await within(running, 10_000, "run()");
  });

  await t.step("from a revocation listener during disconnect(): no deadlock", async () => {
    await admin.createTopic({ topic: "in-listener", numPartitions: 1 });
    await produceNumbered(rill, "in-listener", 1, 3);
    let revoked = 0;
    const consumer = rill.consumer({
      groupId: "g-in-listener",
      maxWaitMs: 200,
      onRevoked: async () => {
        revoked++;
        await consumer.disconnect();
      },
    });
    const seen = gate();
    await consumer.subscribe({ topics: ["in-listener"], fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        if (message.offset === 2) seen.open();
      },
    });
    await seen.promise;
    await consumer.disconnect();
    assert.equal(revoked, 1);
    assert.deepEqual(await brokerView("g-in-listener"), { offset: 3, members: 0 });
  });
});
