/**
 * The Kafka coordinator records a group in KV behind its answers; the HTTP API on the same
 * broker waits for those writes, so right after kafkajs's LeaveGroup is answered,
 * `GET /v1/groups/{g}` already shows the group without that member, even when each KV request
 * takes 300 ms (a hosted KV far away).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { startBroker } from "../_helpers/broker_process.ts";
import { KvConnectEndpoint } from "../_helpers/kv_connect_server.ts";

const TOKEN = "broker-1";

Deno.test({
  name:
    "after a Kafka LeaveGroup is answered, the HTTP API on that broker shows the group without the member",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using endpoint = await KvConnectEndpoint.start({ tokens: [TOKEN] });
    await using broker = await startBroker({
      kvPath: endpoint.url,
      env: { DENO_KV_ACCESS_TOKEN: TOKEN },
    });
    const kafka = new Kafka({
      clientId: "rill-test",
      brokers: [broker.kafka!],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "t", numPartitions: 2 }] });
    await admin.disconnect();
    const consumer = kafka.consumer({ groupId: "lg", sessionTimeout: 10_000 });
    const joined = Promise.withResolvers<void>();
    consumer.on(consumer.events.GROUP_JOIN, () => joined.resolve());
    await consumer.connect();
    await consumer.subscribe({ topic: "t" });
    await consumer.run({ autoCommit: false, eachBatch: () => Promise.resolve() });
    await joined.promise;
    const group = async () => await (await fetch(`${broker.url}/v1/groups/lg`)).json();
    const before = await group();
    assert.equal(before.members.length, 1);
    assert.deepEqual(before.members[0].assignment.map((a: { partition: number }) => a.partition), [
      0,
      1,
    ]);

    endpoint.setLatency(300);
    await consumer.disconnect();
    const after = await group();
    assert.equal(after.members.length, 0, JSON.stringify(after));
    assert.equal(after.state, "Empty");
  },
});
