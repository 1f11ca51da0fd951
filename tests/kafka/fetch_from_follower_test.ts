/**
 * Fetch from follower (KIP-392) with librdkafka and kafkajs: a broker in rack "core" and an
 * edge follower (`rill follower --rack edge`). kcat with `client.rack=edge` bootstraps at the
 * leader, is sent to the follower (preferred read replica) and reads every record there; kcat
 * without a rack reads from the leader; a kafkajs group consumer with `rackId` reads at the
 * follower too; once the follower is gone, the leader stops sending
 * consumers to it. Where records were served is read from each broker's metrics.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Cluster, FAST_FLAGS } from "../replication/_cluster.ts";
import { KCAT, run } from "./_kafka.ts";
import { Kafka, logLevel } from "kafkajs";
import { API, SCHEMAS } from "../../src/kafka/messages.ts";
import { decode, encode } from "../../src/kafka/schema.ts";
import { Reader, Writer } from "../../src/kafka/wire.ts";

/** A raw Kafka connection: one request at a time, answers decoded by the listener's codec. */
async function kafkaConnection(hostPort: string) {
  const at = hostPort.lastIndexOf(":");
  const conn = await Deno.connect({
    hostname: hostPort.slice(0, at),
    port: Number(hostPort.slice(at + 1)),
  });
  let corr = 0;
  const readN = async (n: number) => {
    const out = new Uint8Array(n);
    for (let got = 0; got < n;) got += (await conn.read(out.subarray(got)))!;
    return out;
  };
  return {
    // deno-lint-ignore no-explicit-any
    async ask(apiKey: number, version: number, body: Record<string, unknown>): Promise<any> {
      const schema = SCHEMAS[apiKey];
      const w = new Writer().int16(apiKey).int16(version).int32(++corr).string("test", false);
      if (version >= schema.req.flexible) w.noTags();
      encode(schema.req, version, w, body);
      for (const part of w.frame()) await conn.write(part);
      const frame = await readN(new DataView((await readN(4)).buffer).getInt32(0));
      const r = new Reader(frame);
      assert.equal(r.int32(), corr);
      if (version >= schema.res.flexible) r.skipTags();
      return decode(schema.res, version, r);
    },
    [Symbol.dispose]: () => conn.close(),
  };
}

/** What a Metadata v12 answer on `conn` says: each broker's rack, and each partition's leader. */
async function metadata(
  conn: Awaited<ReturnType<typeof kafkaConnection>>,
): Promise<{ racks: [number, string | null][]; leaders: number[] }> {
  const body = await conn.ask(API.Metadata, 12, {
    topics: [{ topicId: null, name: "near" }],
    allowAutoTopicCreation: false,
  });
  return {
    racks: body.brokers.map((b: { nodeId: number; rack: string | null }) => [b.nodeId, b.rack])
      .sort(),
    leaders: body.topics[0].partitions.map((p: { leaderId: number }) => p.leaderId),
  };
}

/** The records a broker served to consumers of `topic` (`rill_topic_out_records_total`). */
async function servedRecords(url: string, topic: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) =>
    l.startsWith(`rill_topic_out_records_total{topic="${topic}"}`)
  );
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/** The Kafka Fetch requests a broker answered without error. */
async function kafkaFetches(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) =>
    l.startsWith("rill_requests_total{") && l.includes('api="kafka"') &&
    l.includes('route="Fetch"') && l.includes('status="ok"')
  );
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/** kcat reading every partition of `topic` from the beginning to the end. */
async function consume(bootstrap: string, topic: string, extra: string[]): Promise<string[]> {
  const c = await run("kcat", [
    "-b",
    bootstrap,
    "-C",
    "-t",
    topic,
    "-o",
    "beginning",
    "-e",
    "-q",
    "-f",
    "%s\n",
    ...extra,
  ], { timeoutMs: 30_000 });
  assert.equal(c.code, 0, c.stderr);
  return c.stdout.split("\n").filter((l) => l !== "").sort();
}

Deno.test({
  name: "kcat with client.rack=edge reads from the edge follower; without a rack from the leader",
  ignore: !KCAT,
  // kafkajs leaves timers behind after disconnect
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using cluster = await Cluster.start(0, FAST_FLAGS);
    const leader = await cluster.startBroker(1, "broker", ["--rack", "core"]);
    await cluster.createTopic("near", 2, 1);
    const follower = await cluster.startBroker(9, "follower", [
      "--rack",
      "edge",
      "--topics",
      "near",
    ]);
    const values = Array.from({ length: 40 }, (_, i) => `v${String(i).padStart(2, "0")}`);
    const p = await run("kcat", ["-b", leader.kafka!, "-P", "-t", "near"], {
      stdin: values.join("\n") + "\n",
    });
    assert.equal(p.code, 0, p.stderr);

    // Metadata gives each node's rack, the follower included.
    {
      using conn = await kafkaConnection(leader.kafka!);
      assert.deepEqual(await metadata(conn), {
        racks: [[1, "core"], [9, "edge"]],
        leaders: [1, 1],
      });
    }
    // The follower presents itself as the leader of its copies (to clients bootstrapped at
    // the edge), but to a connection that fetches naming its rack — a client the leader sent
    // there — it gives the cluster's Metadata, so that client keeps the real leaders.
    {
      using conn = await kafkaConnection(follower.kafka!);
      assert.deepEqual(await metadata(conn), { racks: [[9, "edge"]], leaders: [9, 9] });
      const fetched = await conn.ask(API.Fetch, 11, {
        maxWaitMs: 0,
        minBytes: 0,
        sessionEpoch: -1,
        topics: [{
          topic: "near",
          partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 }],
        }],
        forgottenTopicsData: [],
        rackId: "edge",
      });
      assert.equal(fetched.responses[0].partitions[0].errorCode, 0);
      assert.deepEqual(await metadata(conn), {
        racks: [[1, "core"], [9, "edge"]],
        leaders: [1, 1],
      });
    }
    const hwm = new Map<number, number>();
    for (const part of (await cluster.describe("near", 1))) {
      hwm.set(part.partition, part.highWatermark!);
    }
    assert.equal([...hwm.values()].reduce((a, b) => a + b, 0), 40);
    // The follower's copy is complete (no event crosses processes: bounded poll).
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ps = await cluster.describe("near", 9);
      if (ps.every((x) => x.logEndOffset === hwm.get(x.partition))) break;
      assert.ok(Date.now() < deadline, `follower copy incomplete: ${JSON.stringify(ps)}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const leaderBefore = await servedRecords(leader.url, "near");
    const followerBefore = await servedRecords(follower.url, "near");
    const followerFetchesBefore = await kafkaFetches(follower.url);
    const edge = await consume(leader.kafka!, "near", ["-X", "client.rack=edge"]);
    assert.deepEqual(edge, values, "every record, through the follower");
    assert.equal(await servedRecords(follower.url, "near") - followerBefore, 40);
    assert.equal(await servedRecords(leader.url, "near") - leaderBefore, 0, "none from the leader");
    assert.ok(await kafkaFetches(follower.url) > followerFetchesBefore);

    // No rack: the leader serves, the follower is not asked.
    const plain = await consume(leader.kafka!, "near", []);
    assert.deepEqual(plain, values);
    assert.equal(await servedRecords(leader.url, "near") - leaderBefore, 40);
    assert.equal(await servedRecords(follower.url, "near") - followerBefore, 40);

    // A rack no node is in: the leader serves.
    assert.deepEqual(await consume(leader.kafka!, "near", ["-X", "client.rack=moon"]), values);
    assert.equal(await servedRecords(leader.url, "near") - leaderBefore, 80);

    // kafkajs (a group consumer with rackId) follows the preferred read replica too.
    const kafka = new Kafka({
      clientId: "kip392",
      brokers: [leader.kafka!],
      logLevel: logLevel.NOTHING,
    });
    const consumer = kafka.consumer({ groupId: "near-edge", rackId: "edge", maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: "near", fromBeginning: true });
      const seen: string[] = [];
      const all = Promise.withResolvers<void>();
      await consumer.run({
        eachMessage: ({ message }) => {
          seen.push(message.value!.toString());
          if (seen.length === values.length) all.resolve();
          return Promise.resolve();
        },
      });
      await all.promise;
      assert.deepEqual(seen.sort(), values);
    } finally {
      await consumer.disconnect();
    }
    assert.equal(await servedRecords(follower.url, "near") - followerBefore, 80);
    assert.equal(
      await servedRecords(leader.url, "near") - leaderBefore,
      80,
      "none from the leader",
    );

    // The follower stops copying (killed): once the leader sees it gone, consumers of its
    // rack are served by the leader again.
    await cluster.kill(9);
    const gone = Date.now() + 20_000;
    for (;;) {
      const res = await fetch(`${leader.url}/v1/cluster`);
      const body = await res.json() as { brokers: { id: number; alive: boolean }[] };
      if (!body.brokers.find((b) => b.id === 9)?.alive) break;
      assert.ok(Date.now() < gone, "the follower's registration never expired");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(await consume(leader.kafka!, "near", ["-X", "client.rack=edge"]), values);
    assert.equal(await servedRecords(leader.url, "near") - leaderBefore, 120);
  },
});
