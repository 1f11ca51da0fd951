/**
 * The client library under least privilege against a broker process with `--auth`: a
 * producer whose key may only write the topic, and a group consumer whose key may only
 * read the topic and the group, do their whole jobs (metadata, idempotent produce, join,
 * heartbeats, fetch, commits); each is refused what the other may do.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { AclStore } from "../../src/coordination/acls.ts";
import { ApiKeyStore } from "../../src/coordination/auth_keys.ts";
import { startBroker } from "../_helpers/broker_process.ts";

Deno.test("a write-only producer and a read-only group consumer do their jobs and nothing else", async () => {
  await using broker = await startBroker({ extraArgs: ["--auth"] });
  const kv = await Deno.openKv(`${broker.dataDir}/meta.kv`);
  let admin: string, producerKey: string, consumerKey: string;
  try {
    const keys = new ApiKeyStore(kv);
    admin = (await keys.bootstrap()).token;
    producerKey = (await keys.create({ principal: "orders-svc" })).token;
    consumerKey = (await keys.create({ principal: "billing-svc" })).token;
    const acls = new AclStore(kv);
    const allow = (
      principal: string,
      resourceType: "topic" | "group",
      name: string,
      op: "read" | "write",
    ) =>
      acls.add({
        principal,
        resourceType,
        patternType: "literal",
        resourceName: name,
        operation: op,
        permission: "allow",
      });
    await allow("orders-svc", "topic", "orders", "write");
    await allow("billing-svc", "topic", "orders", "read");
    await allow("billing-svc", "group", "billing", "read");
  } finally {
    kv.close();
  }
  await new Rill({ brokers: [broker.url], auth: admin }).admin().createTopic({
    topic: "orders",
    numPartitions: 2,
  });

  const producer = new Rill({ brokers: [broker.url], auth: producerKey }).producer();
  await producer.send({
    topic: "orders",
    messages: [{ key: "a", value: "1" }, { key: "b", value: "2" }, { key: "c", value: "3" }],
  });
  await producer.disconnect();
  // The same key over HTTP: its raw-batch produce carries the key (the record lane checks it).
  const httpProducer = new Rill({ brokers: [broker.url], auth: producerKey, transport: "http" })
    .producer();
  await httpProducer.send({ topic: "orders", messages: [{ key: "d", value: "4" }] });
  await httpProducer.disconnect();

  const rill = new Rill({ brokers: [broker.url], auth: consumerKey, retry: { retries: 1 } });
  const consumer = rill.consumer({ groupId: "billing", maxWaitMs: 200 });
  await consumer.subscribe({ topics: ["orders"], fromBeginning: true });
  const seen: string[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => done = r);
  await consumer.run({
    eachMessage: ({ message }) => {
      seen.push(message.valueString()!);
      if (seen.length === 4) done();
    },
  });
  await all;
  await consumer.disconnect(); // commits what it read, then resolves
  assert.deepEqual(seen.sort(), ["1", "2", "3", "4"]);
  const adminRill = new Rill({ brokers: [broker.url], auth: admin });
  const committed = (await adminRill.admin().fetchGroupOffsets("billing"))
    .reduce((n, o) => n + o.offset, 0);
  assert.equal(committed, 4, "the read-only consumer committed its offsets");
  assert.doesNotMatch(broker.stderr(), /"audit"/, "nothing of the normal work was denied");

  // Each is refused the other's work: without write on any topic, not even a producer id
  // (Kafka's InitProducerId, KIP-679); without idempotence, the write itself.
  const idem = await rill.producer().send({ topic: "orders", messages: [{ value: "x" }] })
    .catch((e) => e);
  assert.equal(idem.code, "CLUSTER_AUTHORIZATION_FAILED");
  const write = await rill.producer({ idempotent: false })
    .send({ topic: "orders", messages: [{ value: "x" }] }).catch((e) => e);
  assert.equal(write.code, "TOPIC_AUTHORIZATION_FAILED");
  const other = rill.consumer({ groupId: "audit", maxWaitMs: 200 });
  await other.subscribe({ topics: ["orders"], fromBeginning: true });
  const joined = await other.run({ eachMessage: () => {} }).catch((e) => e);
  assert.equal(joined?.code, "GROUP_AUTHORIZATION_FAILED");
  await other.disconnect().catch(() => {});
  const read = await new Rill({ brokers: [broker.url], auth: producerKey }).admin()
    .fetchOffset("orders", 0, "latest").catch((e) => e);
  assert.equal(read.code, "TOPIC_AUTHORIZATION_FAILED");
});
