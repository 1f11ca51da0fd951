/**
 * kafkajs 2.2.4 (npm) against a real broker process through the Kafka listener: admin,
 * keyed and idempotent producers, a consumer group of two members that rebalances when one
 * leaves, manual commits visible through the HTTP API, and seek.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Consumer, Kafka, logLevel } from "kafkajs";
import { startBroker } from "../_helpers/broker_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function client(kafka: string) {
  return new Kafka({
    clientId: "rill-test",
    brokers: [kafka],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100 },
  });
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

Deno.test({
  name: "kafkajs admin creates, lists and describes topics; keyed sends land; offsets add up",
  ...opts,
  async fn() {
    await using broker = await startBroker();
    const kafka = client(broker.kafka!);
    const admin = kafka.admin();
    await admin.connect();
    try {
      assert.equal(await admin.createTopics({ topics: [{ topic: "a", numPartitions: 3 }] }), true);
      assert.equal(await admin.createTopics({ topics: [{ topic: "a", numPartitions: 3 }] }), false);
      assert.ok((await admin.listTopics()).includes("a"));
      const meta = await admin.fetchTopicMetadata({ topics: ["a"] });
      assert.equal(meta.topics[0].partitions.length, 3);
      const producer = kafka.producer();
      await producer.connect();
      const sent = await producer.send({
        topic: "a",
        messages: Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 7}`, value: `v${i}` })),
      });
      await producer.disconnect();
      assert.ok(sent.every((r) => r.errorCode === 0));
      const offsets = await admin.fetchTopicOffsets("a");
      assert.equal(offsets.reduce((n, o) => n + Number(o.high), 0), 30);
      // The same key always went to the same partition (murmur2, as Rill's own client).
      await admin.createPartitions({ topicPartitions: [{ topic: "a", count: 4 }] });
      const after = await admin.fetchTopicMetadata({ topics: ["a"] });
      assert.equal(after.topics[0].partitions.length, 4);
      await admin.deleteTopics({ topics: ["a"] });
      assert.ok(!(await admin.listTopics()).includes("a"));
    } finally {
      await admin.disconnect();
    }
  },
});

Deno.test({
  name:
    "kafkajs idempotent producer: InitProducerId from the shared store, sequences checked by the broker",
  ...opts,
  async fn() {
    await using broker = await startBroker();
    const kafka = client(broker.kafka!);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "idem", numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < 5; i++) {
      await producer.send({
        topic: "idem",
        acks: -1,
        messages: Array.from({ length: 10 }, (_, j) => ({ value: `m${i * 10 + j}` })),
      });
    }
    await producer.disconnect();
    // The partition remembers the producer's last batch: sequence 49 (50 records).
    let found = null;
    for (let id = 0; id < 64 && !found; id++) {
      const res = await fetch(`${broker.url}/v1/producers/${id}?topic=idem&partition=0`);
      if (res.ok) found = await res.json();
      else await res.body?.cancel();
    }
    assert.ok(found, "the partition holds state for the kafkajs producer id");
    assert.equal(found.lastSequence, 49);
    assert.equal(found.lastOffset, 49);
  },
});

Deno.test({
  name:
    "kafkajs consumer group: two members split the partitions, a leaving member's partitions move, commits and seek work",
  ...opts,
  async fn() {
    await using broker = await startBroker();
    const kafka = client(broker.kafka!);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "g", numPartitions: 4 }] });
    const received: string[] = [];
    const assignments = new Map<string, number[]>();
    const members: Consumer[] = [];
    const joined = (name: string) => {
      const c = kafka.consumer({ groupId: "kg", sessionTimeout: 6000, heartbeatInterval: 300 });
      c.on(c.events.GROUP_JOIN, (e) => {
        assignments.set(name, (e.payload.memberAssignment["g"] ?? []).slice().sort());
      });
      members.push(c);
      return c;
    };
    const a = joined("a"), b = joined("b");
    try {
      await a.connect();
      await a.subscribe({ topic: "g", fromBeginning: true });
      const aAll = deferred<void>();
      a.on(a.events.GROUP_JOIN, (e) => {
        if ((e.payload.memberAssignment["g"] ?? []).length === 4) aAll.resolve();
      });
      await a.run({
        eachMessage: ({ message }) =>
          Promise.resolve(void received.push(message.value!.toString())),
      });
      await aAll.promise;
      const split = deferred<void>();
      const check = () => {
        const x = assignments.get("a") ?? [], y = assignments.get("b") ?? [];
        if (x.length === 2 && y.length === 2) split.resolve();
      };
      a.on(a.events.GROUP_JOIN, check);
      b.on(b.events.GROUP_JOIN, check);
      await b.connect();
      await b.subscribe({ topic: "g", fromBeginning: true });
      await b.run({
        eachMessage: ({ message }) =>
          Promise.resolve(void received.push(message.value!.toString())),
      });
      await split.promise;
      assert.deepEqual([...assignments.get("a")!, ...assignments.get("b")!].sort(), [0, 1, 2, 3]);
      const producer = kafka.producer();
      await producer.connect();
      const values = Array.from({ length: 40 }, (_, i) => `v${i}`);
      for (let p = 0; p < 4; p++) {
        await producer.send({
          topic: "g",
          messages: values.filter((_, i) => i % 4 === p).map((value) => ({ value, partition: p })),
        });
      }
      await producer.disconnect();
      const all = deferred<void>();
      const poll = setInterval(() => received.length >= 40 && all.resolve(), 20);
      await all.promise;
      clearInterval(poll);
      assert.deepEqual(received.slice().sort(), values.slice().sort());
      // DescribeGroups and ListGroups through kafkajs's admin.
      const described = await admin.describeGroups(["kg"]);
      assert.equal(described.groups[0].state, "Stable");
      assert.equal(described.groups[0].protocol, "RoundRobinAssigner");
      assert.equal(described.groups[0].members.length, 2);
      assert.ok((await admin.listGroups()).groups.some((g) => g.groupId === "kg"));
      // The group through the HTTP API: two members, offsets committed by kafkajs.
      const moved = deferred<void>();
      a.on(a.events.GROUP_JOIN, (e) => {
        if ((e.payload.memberAssignment["g"] ?? []).length === 4) moved.resolve();
      });
      await b.disconnect();
      await moved.promise;
      const g = await (await fetch(`${broker.url}/v1/groups/kg`)).json();
      assert.equal(g.members.length, 1);
      assert.equal(g.members[0].assignment.length, 4);
    } finally {
      for (const c of members) await c.disconnect().catch(() => {});
    }
    // Offsets committed by the group are the shared records: Rill's HTTP API reads them.
    const committed = await admin.fetchOffsets({ groupId: "kg", topics: ["g"] });
    const http = await (await fetch(`${broker.url}/v1/groups/kg/offsets`)).json();
    assert.deepEqual(
      committed[0].partitions.map((p) => Number(p.offset)).sort(),
      [10, 10, 10, 10],
    );
    assert.deepEqual(
      http.offsets.map((o: { offset: number }) => o.offset),
      [10, 10, 10, 10],
    );
    // Manual commit and seek with a fresh member of another group.
    const c = kafka.consumer({ groupId: "manual", sessionTimeout: 6000 });
    await c.connect();
    await c.subscribe({ topic: "g", fromBeginning: true });
    const got = deferred<string>();
    let seeked = false;
    await c.run({
      autoCommit: false,
      eachMessage: ({ partition, message }) => {
        if (partition === 0 && !seeked) {
          seeked = true;
          c.seek({ topic: "g", partition: 0, offset: "7" });
        } else if (partition === 0 && message.offset === "7") {
          got.resolve(message.value!.toString());
        }
        return Promise.resolve();
      },
    });
    assert.equal(await got.promise, "v28");
    await c.commitOffsets([{ topic: "g", partition: 0, offset: "8" }]);
    await c.disconnect();
    const m = await (await fetch(`${broker.url}/v1/groups/manual/offsets`)).json();
    assert.deepEqual(m.offsets.find((o: { partition: number }) => o.partition === 0).offset, 8);
    await admin.disconnect();
  },
});
