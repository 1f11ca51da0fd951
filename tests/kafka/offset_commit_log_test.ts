/**
 * A Kafka OffsetCommit is answered once it is in the broker's offset commit log, before its
 * copy into KV (broker/offset_commit_log.ts): with a hosted KV that refuses every write,
 * kafkajs's commit is still answered, OffsetFetch and `GET /v1/groups/{g}/offsets` on that
 * broker show it, and after a kill -9 (the copy never made) and a restart with a torn entry
 * at the end of the log, the commit is in KV.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { startBroker } from "../_helpers/broker_process.ts";
import { KvConnectEndpoint } from "../_helpers/kv_connect_server.ts";
import { groupOffsetKey } from "../../src/coordination/group_keys.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TOKEN = "broker-1";

async function httpOffsets(url: string, group: string): Promise<number[]> {
  const res = await fetch(`${url}/v1/groups/${group}/offsets`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.offsets.map((o: { partition: number; offset: number }) => o.offset);
}

Deno.test({
  name:
    "a Kafka commit answered while the KV refuses writes is read back at once and survives kill -9 and a torn log tail",
  ...opts,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "rill-offset-log-" });
    const dataDir = `${dir}/data`;
    await using endpoint = await KvConnectEndpoint.start({ tokens: [TOKEN], path: `${dir}/kv` });
    const env = { DENO_KV_ACCESS_TOKEN: TOKEN };
    try {
      let stderr = "";
      {
        await using broker = await startBroker({ dataDir, kvPath: endpoint.url, env });
        const kafka = new Kafka({
          clientId: "rill-test",
          brokers: [broker.kafka!],
          logLevel: logLevel.NOTHING,
          retry: { retries: 2, initialRetryTime: 100 },
        });
        const admin = kafka.admin();
        await admin.connect();
        await admin.createTopics({ topics: [{ topic: "t", numPartitions: 1 }] });
        const consumer = kafka.consumer({ groupId: "g", sessionTimeout: 10_000 });
        // A record read first: kafkajs has then settled where it starts (it commits that
        // start itself when the group has no offset yet).
        const read = Promise.withResolvers<void>();
        await consumer.connect();
        await consumer.subscribe({ topic: "t", fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatch: ({ batch }) => {
            if (batch.messages.length > 0) read.resolve();
            return Promise.resolve();
          },
        });
        const producer = kafka.producer();
        await producer.connect();
        await producer.send({ topic: "t", messages: [{ value: "x" }] });
        await producer.disconnect();
        await read.promise;

        endpoint.startWriteOutage();
        // The old path waited for the KV write: it would never be answered.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          consumer.commitOffsets([{ topic: "t", partition: 0, offset: "42" }]),
          new Promise((_, reject) =>
            timer = setTimeout(
              () => reject(new Error("the commit was not answered while the KV refused writes")),
              20_000,
            )
          ),
        ]);
        clearTimeout(timer);
        // Reads on this broker see it although KV does not have it.
        const fetched = await admin.fetchOffsets({ groupId: "g", topics: ["t"] });
        assert.equal(fetched[0].partitions[0].offset, "42");
        assert.deepEqual(await httpOffsets(broker.url, "g"), [42]);

        broker.kill("SIGKILL");
        await broker.exited;
        stderr = broker.stderr();
        await consumer.disconnect().catch(() => {});
        await admin.disconnect().catch(() => {});
      }
      assert.doesNotMatch(stderr, /dropped|copying Kafka commits .* failed/);
      endpoint.endWriteOutage();
      // A crash in the middle of a later append: a header promising more than is there.
      const torn = new Uint8Array(20);
      new DataView(torn.buffer).setUint32(0, 200);
      const file = await Deno.open(`${dataDir}/offset-commits.log`, { append: true });
      await file.write(torn);
      file.close();

      await using again = await startBroker({ dataDir, kvPath: endpoint.url, env });
      // Copied into KV while the broker opened (before it was ready).
      assert.deepEqual(await httpOffsets(again.url, "g"), [42]);
      assert.match(again.stderr(), /ignored the last 20 byte\(s\) of offset-commits\.log/);
      const kv = await Deno.openKv(`${dir}/kv`);
      try {
        const row = await kv.get<{ offset: number }>(groupOffsetKey("g", "t", 0));
        assert.equal(row.value?.offset, 42, "the commit is in the KV itself");
      } finally {
        kv.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
