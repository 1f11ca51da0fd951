/**
 * @platformatic/kafka (npm, pinned in deno.json; it runs under Deno) against a real broker
 * process through the Kafka listener, at the flexible versions it picks: its admin creates
 * and lists topics and gets each topic's id, its producer sends keyed records with headers,
 * a consumer group reads them back and a second member resumes at the committed offset,
 * the mod.ts client reads the same records over HTTP identically, the admin lists and
 * deletes the group, a topic keeps its id across a broker restart and its configs are
 * altered; with `--auth` it authenticates with SASL/PLAIN; on three brokers each gives the
 * topic the same id and a group reads from every leader. A small TCP tap between the client and the broker (the broker
 * advertises the tap's address) records the API versions on the wire.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  Admin,
  Consumer,
  type Message,
  Producer,
  stringDeserializers,
  stringSerializers,
} from "@platformatic/kafka";
import { Rill } from "../../mod.ts";
import { type BrokerProcess, startBroker } from "../_helpers/broker_process.ts";
import { bootstrapKey } from "./_kafka.ts";
import { Cluster, FAST_FLAGS } from "../replication/_cluster.ts";
import { API } from "../../src/kafka/messages.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A TCP tap: forwards to `target` and records each request's [api key, version]. */
function versionTap() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen = new Map<number, Set<number>>();
  const conns = new Set<Deno.Conn>();
  let target = "";
  const pump = async (from: Deno.Conn, to: Deno.Conn, parse: boolean) => {
    let head = new Uint8Array(0); // the first 8 bytes of the current frame
    let skip = 0; // bytes of the current frame still to pass
    try {
      for await (const chunk of from.readable) {
        let o = 0;
        while (parse && o < chunk.length) {
          if (skip > 0) {
            const n = Math.min(skip, chunk.length - o);
            skip -= n;
            o += n;
            continue;
          }
          const n = Math.min(8 - head.length, chunk.length - o);
          head = new Uint8Array([...head, ...chunk.subarray(o, o + n)]);
          o += n;
          if (head.length === 8) {
            const v = new DataView(head.buffer);
            const apiKey = v.getInt16(4), version = v.getInt16(6);
            if (!seen.has(apiKey)) seen.set(apiKey, new Set());
            seen.get(apiKey)!.add(version);
            skip = v.getInt32(0) - 4;
            head = new Uint8Array(0);
          }
        }
        let w = 0;
        while (w < chunk.length) w += await to.write(chunk.subarray(w));
      }
    } catch {
      // a side closed
    }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const [host, port] = target.split(":");
      const server = await Deno.connect({ hostname: host, port: Number(port) });
      conns.add(client).add(server);
      pump(client, server, true);
      pump(server, client, false);
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    seen,
    set target(t: string) {
      target = t;
    },
    /** the highest version seen of an API */
    max(apiKey: number): number {
      return Math.max(...seen.get(apiKey) ?? [-1]);
    },
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}

async function tappedBroker(dataDir?: string) {
  const tap = versionTap();
  const broker = await startBroker({
    dataDir,
    extraArgs: ["--kafka-advertised", tap.address],
  });
  tap.target = broker.kafka!;
  return { tap, broker, bootstrapBrokers: [tap.address] };
}

async function read<K, V, HK, HV>(
  stream: AsyncIterable<Message<K, V, HK, HV>>,
  n: number,
): Promise<Message<K, V, HK, HV>[]> {
  const out: Message<K, V, HK, HV>[] = [];
  for await (const m of stream) {
    out.push(m);
    if (out.length === n) break;
  }
  return out;
}

/** The Kafka error codes of the answer a failed @platformatic/kafka call carries. */
async function answeredCodes(call: Promise<unknown>): Promise<number[]> {
  try {
    await call;
  } catch (e) {
    const codes: number[] = [];
    const walk = (v: unknown) => {
      if (v === null || typeof v !== "object") return;
      for (const [k, x] of Object.entries(v)) {
        if (k === "errorCode" && typeof x === "number" && x !== 0) codes.push(x);
        else walk(x);
      }
    };
    for (const inner of (e as { errors?: { response?: unknown }[] }).errors ?? []) {
      walk(inner.response);
    }
    return codes;
  }
  throw new Error("the call succeeded");
}

async function topicIdOverHttp(broker: BrokerProcess, topic: string): Promise<string> {
  const res = await fetch(`${broker.url}/v1/topics/${topic}`);
  assert.equal(res.status, 200);
  return (await res.json()).topicId;
}

Deno.test({
  name:
    "@platformatic/kafka: admin, keyed producer with headers, a consumer group resuming at its commit, mod.ts reads the same records",
  ...opts,
  async fn() {
    const { tap, broker, bootstrapBrokers } = await tappedBroker();
    const admin = new Admin({ clientId: "plt-admin", bootstrapBrokers });
    const producer = new Producer({
      clientId: "plt-producer",
      bootstrapBrokers,
      serializers: stringSerializers,
      idempotent: true,
    });
    const consumers: Consumer<string, string, string, string>[] = [];
    try {
      const created = await admin.createTopics({ topics: ["orders"], partitions: 2, replicas: 1 });
      assert.equal(created.length, 1);
      // CreateTopics v7 answers the id the topic got in the coordination store.
      assert.equal(created[0].id, await topicIdOverHttp(broker, "orders"));
      await assert.rejects(
        admin.createTopics({ topics: ["orders"], partitions: 2, replicas: 1 }),
        /already exists/i,
      );
      assert.deepEqual(await admin.listTopics(), ["orders"]);
      const meta = await admin.metadata({ topics: ["orders"] });
      assert.equal(meta.topics.get("orders")!.id, created[0].id);
      assert.equal(meta.topics.get("orders")!.partitionsCount, 2);

      const ts = 1_700_000_000_000n;
      const sent = Array.from({ length: 6 }, (_, i) => ({
        topic: "orders",
        partition: i % 2,
        key: `k${i}`,
        value: `v${i}`,
        headers: { trace: `t${i}`, seq: String(i) },
        timestamp: ts + BigInt(i),
      }));
      await producer.send({ messages: sent });

      // The first member of group g reads all 6 records, commits part of them, and leaves.
      const make = () => {
        const c = new Consumer({
          groupId: "g",
          clientId: "plt-consumer",
          bootstrapBrokers,
          deserializers: stringDeserializers,
          maxWaitTime: 200,
          sessionTimeout: 10_000,
          heartbeatInterval: 500,
        });
        consumers.push(c);
        return c;
      };
      const first = make();
      const stream1 = await first.consume({
        topics: ["orders"],
        mode: "committed",
        fallbackMode: "earliest",
        autocommit: false,
      });
      const got = await read(stream1, 6);
      const byPartition = (ms: Message<string, string, string, string>[], p: number) =>
        ms.filter((m) => m.partition === p).map((m) => ({
          key: m.key,
          value: m.value,
          headers: Object.fromEntries(m.headers),
          timestamp: m.timestamp,
          offset: m.offset,
        }));
      for (const p of [0, 1]) {
        assert.deepEqual(
          byPartition(got, p),
          sent.filter((m) => m.partition === p).map((m, i) => ({
            key: m.key,
            value: m.value,
            headers: m.headers,
            timestamp: m.timestamp,
            offset: BigInt(i),
          })),
        );
      }
      // Commit the next offsets to read: 2 of partition 0 (records 0 and 1 done), 1 of
      // partition 1.
      await first.commit({
        offsets: [
          { topic: "orders", partition: 0, offset: 2n, leaderEpoch: 0 },
          { topic: "orders", partition: 1, offset: 1n, leaderEpoch: 0 },
        ],
      });
      await stream1.close();
      await first.close(true);
      const committed = await (await fetch(`${broker.url}/v1/groups/g/offsets`)).json();
      assert.deepEqual(
        (committed.offsets as { topic: string; partition: number; offset: number }[])
          .map((o) => [o.topic, o.partition, o.offset]).sort(),
        [["orders", 0, 2], ["orders", 1, 1]],
      );

      // A new member of g starts where g committed.
      const second = make();
      const stream2 = await second.consume({
        topics: ["orders"],
        mode: "committed",
        fallbackMode: "fail",
        autocommit: false,
      });
      const rest = await read(stream2, 3);
      assert.deepEqual(
        rest.map((m) => `${m.partition}:${m.offset}:${m.value}`).sort(),
        ["0:2:v4", "1:1:v3", "1:2:v5"],
      );
      await stream2.close();
      await second.close(true);

      // Its admin sees the group, refuses nothing it asks of an empty one, and deletes it.
      const groups = await admin.listGroups();
      assert.equal(groups.get("g")?.protocolType, "consumer");
      // ListGroups v5 filters by state (the last member left: Empty).
      assert.deepEqual([...(await admin.listGroups({ states: ["Empty"] })).keys()], ["g"]);
      assert.deepEqual([...(await admin.listGroups({ states: ["Stable"] })).keys()], []);
      const offsets = await admin.listConsumerGroupOffsets({ groups: ["g"] });
      assert.deepEqual(
        offsets[0].topics.flatMap((t) =>
          t.partitions.map((p) => `${t.name}:${p.partitionIndex}:${p.committedOffset}`)
        ).sort(),
        ["orders:0:2", "orders:1:1"],
      );
      await admin.deleteGroups({ groups: ["g"] });
      assert.equal((await fetch(`${broker.url}/v1/groups/g`)).status, 404);
      assert.deepEqual(
        await answeredCodes(admin.deleteGroups({ groups: ["g"] })),
        [69],
        "GROUP_ID_NOT_FOUND",
      );

      // mod.ts over HTTP reads what @platformatic/kafka produced, identically.
      const rill = new Rill({ brokers: [broker.url], clientId: "plt-cross" });
      const rc = rill.consumer({ maxWaitMs: 200 });
      await rc.assign([
        { topic: "orders", partition: 0, offset: "earliest" },
        { topic: "orders", partition: 1, offset: "earliest" },
      ]);
      const viaHttp: string[] = [];
      for await (const m of rc) {
        viaHttp.push(
          `${m.partition}|${m.offset}|${m.keyString()}|${m.valueString()}|${
            m.headerString("trace")
          }|${m.headerString("seq")}|${m.timestamp}`,
        );
        if (viaHttp.length === 6) break;
      }
      await rc.disconnect();
      assert.deepEqual(
        viaHttp.sort(),
        got.map((m) =>
          `${m.partition}|${m.offset}|${m.key}|${m.value}|${m.headers.get("trace")}|${
            m.headers.get("seq")
          }|${m.timestamp}`
        ).sort(),
      );

      // What the client picked on the wire: the flexible versions this issue adds.
      assert.equal(tap.max(API.Metadata), 12);
      assert.equal(tap.max(API.CreateTopics), 7);
      assert.equal(tap.max(API.InitProducerId), 5);
      assert.equal(tap.max(API.Produce), 11);
      assert.equal(tap.max(API.FindCoordinator), 6);
      assert.equal(tap.max(API.JoinGroup), 9);
      assert.equal(tap.max(API.SyncGroup), 5);
      assert.equal(tap.max(API.OffsetFetch), 9);
      assert.equal(tap.max(API.OffsetCommit), 9);
      assert.equal(tap.max(API.Fetch), 17);
      assert.equal(tap.max(API.LeaveGroup), 5);
      assert.equal(tap.max(API.DeleteGroups), 2);
    } finally {
      for (const c of consumers) await c.close(true).catch(() => {});
      await producer.close().catch(() => {});
      await admin.close().catch(() => {});
      await tap.close();
      await broker[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name:
    "@platformatic/kafka: a topic keeps its id across a broker restart; its configs are altered; deleted, it is gone",
  ...opts,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "rill-plt-" });
    try {
      let id: string;
      {
        const { tap, broker, bootstrapBrokers } = await tappedBroker(dataDir);
        const admin = new Admin({ clientId: "plt-admin", bootstrapBrokers });
        try {
          [{ id }] = await admin.createTopics({ topics: ["kept"], partitions: 1, replicas: 1 });
        } finally {
          await admin.close();
          await tap.close();
          await broker.stop();
        }
      }
      const { tap, broker, bootstrapBrokers } = await tappedBroker(dataDir);
      const admin = new Admin({ clientId: "plt-admin", bootstrapBrokers });
      try {
        const meta = await admin.metadata({ topics: ["kept"] });
        assert.equal(meta.topics.get("kept")!.id, id);
        // Topic configs: set one by one, then replaced as a whole.
        const configs = async () =>
          Object.fromEntries(
            (await admin.describeConfigs({
              resources: [{ resourceType: 2, resourceName: "kept" }],
            }))[0].configs.map((c) => [c.name, c.value]),
          );
        await admin.incrementalAlterConfigs({
          resources: [{
            resourceType: 2,
            resourceName: "kept",
            configs: [
              { name: "retention.ms", configOperation: 0, value: "3600000" },
              { name: "cleanup.policy", configOperation: 0, value: "compact" },
            ],
          }],
        });
        assert.deepEqual(await configs(), {
          "retention.ms": "3600000",
          "cleanup.policy": "compact",
        });
        await admin.alterConfigs({
          resources: [{
            resourceType: 2,
            resourceName: "kept",
            configs: [{ name: "retention.ms", value: "7200000" }],
          }],
        });
        assert.deepEqual(await configs(), { "retention.ms": "7200000" });
        assert.deepEqual(
          await answeredCodes(admin.incrementalAlterConfigs({
            resources: [{
              resourceType: 2,
              resourceName: "kept",
              configs: [{ name: "retention.ms", configOperation: 0, value: "soon" }],
            }],
          })),
          [40],
          "INVALID_CONFIG",
        );
        assert.deepEqual(
          await configs(),
          { "retention.ms": "7200000" },
          "a bad value changes nothing",
        );
        await admin.deleteTopics({ topics: ["kept"] });
        assert.deepEqual(await admin.listTopics(), []);
        assert.equal(tap.max(API.IncrementalAlterConfigs), 1);
        assert.equal(tap.max(API.AlterConfigs), 2);
        assert.equal(tap.max(API.DeleteTopics), 6);
      } finally {
        await admin.close();
        await tap.close();
        await broker[Symbol.asyncDispose]();
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "@platformatic/kafka with --auth: SASL/PLAIN with an API key creates and produces; a bad secret is refused",
  ...opts,
  async fn() {
    await using broker = await startBroker({ extraArgs: ["--auth"] });
    const { token, username, password: secret } = await bootstrapKey(broker.dataDir);
    const sasl = (password: string) => ({ mechanism: "PLAIN" as const, username, password });
    const bootstrapBrokers = [broker.kafka!];
    const bad = new Admin({
      clientId: "plt-bad",
      bootstrapBrokers,
      sasl: sasl("wrong"),
      retries: 0,
    });
    // The refusal is SaslAuthenticate's SASL_AUTHENTICATION_FAILED, deep in its error chain.
    await assert.rejects(bad.listTopics(), (e: Error) => {
      const ids: string[] = [];
      const walk = (x: { apiId?: string; errors?: unknown[]; cause?: unknown }) => {
        if (x.apiId) ids.push(x.apiId);
        for (const y of x.errors ?? []) walk(y as typeof x);
        if (x.cause) walk(x.cause as typeof x);
      };
      walk(e as typeof e & { apiId?: string });
      return ids.includes("SASL_AUTHENTICATION_FAILED");
    });
    await bad.close().catch(() => {});
    const admin = new Admin({
      clientId: "plt-admin",
      bootstrapBrokers,
      sasl: sasl(secret),
    });
    const producer = new Producer({
      clientId: "plt-producer",
      bootstrapBrokers,
      serializers: stringSerializers,
      sasl: sasl(secret),
    });
    try {
      await admin.createTopics({ topics: ["s"], partitions: 1, replicas: 1 });
      await producer.send({ messages: [{ topic: "s", key: "k", value: "hello" }] });
      const res = await fetch(`${broker.url}/v1/topics/s/partitions/0/records?offset=0`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal((await res.json()).records[0].value, "hello");
    } finally {
      await producer.close().catch(() => {});
      await admin.close().catch(() => {});
    }
  },
});

Deno.test({
  name:
    "@platformatic/kafka on 3 brokers: every broker gives a topic the same id; a group reads what was produced from every leader",
  ...opts,
  async fn() {
    await using cluster = await Cluster.start(3, FAST_FLAGS);
    const kafkas = [...cluster.procs.values()].map((p) => p.kafka!);
    const admin = new Admin({ clientId: "plt-admin", bootstrapBrokers: [kafkas[0]] });
    const producer = new Producer({
      clientId: "plt-producer",
      bootstrapBrokers: kafkas,
      serializers: stringSerializers,
    });
    const consumer = new Consumer({
      groupId: "spread",
      clientId: "plt-consumer",
      bootstrapBrokers: [kafkas[2]],
      deserializers: stringDeserializers,
      maxWaitTime: 200,
    });
    const admins: Admin[] = [];
    try {
      const [{ id }] = await admin.createTopics({ topics: ["spread"], partitions: 3, replicas: 1 });
      const leaders = new Set(
        (await (await fetch(`${cluster.url(1)}/v1/topics/spread`)).json()).partitions.map((
          p: { leader: number },
        ) => p.leader),
      );
      assert.equal(leaders.size, 3, "one partition led by each broker");
      for (const k of kafkas) {
        const a = new Admin({ clientId: "plt-admin", bootstrapBrokers: [k] });
        admins.push(a);
        assert.equal((await a.metadata({ topics: ["spread"] })).topics.get("spread")!.id, id);
      }
      await producer.send({
        messages: Array.from({ length: 9 }, (_, i) => ({
          topic: "spread",
          partition: i % 3,
          key: `k${i}`,
          value: `v${i}`,
        })),
      });
      const stream = await consumer.consume({
        topics: ["spread"],
        mode: "earliest",
        autocommit: false,
      });
      const got = await read(stream, 9);
      await stream.close();
      assert.deepEqual(
        got.map((m) => `${m.partition}:${m.offset}:${m.key}:${m.value}`).sort(),
        Array.from({ length: 9 }, (_, i) => `${i % 3}:${Math.floor(i / 3)}:k${i}:v${i}`).sort(),
      );
    } finally {
      await consumer.close(true).catch(() => {});
      await producer.close().catch(() => {});
      for (const a of [admin, ...admins]) await a.close().catch(() => {});
    }
  },
});
