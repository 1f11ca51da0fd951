/**
 * Fetch from follower (KIP-392) with librdkafka: a broker in rack "core" and an edge
 * follower (`rill follower --rack edge`). kcat with `client.rack=edge` bootstraps at the
 * leader, is sent to the follower (preferred read replica) and reads every record there; kcat
 * without a rack reads from the leader; once the follower is gone, the leader stops sending
 * consumers to it. Where records were served is read from each broker's metrics.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Cluster, FAST_FLAGS } from "../replication/_cluster.ts";
import { KCAT, run } from "./_kafka.ts";
import { API, SCHEMAS } from "../../src/kafka/messages.ts";
import { decode, encode } from "../../src/kafka/schema.ts";
import { Reader, Writer } from "../../src/kafka/wire.ts";

/** The brokers a Metadata v12 request to `hostPort` lists: id → rack (kcat does not print racks). */
async function metadataRacks(hostPort: string): Promise<Map<number, string | null>> {
  const [hostname, port] = [
    hostPort.slice(0, hostPort.lastIndexOf(":")),
    hostPort.split(":").at(-1),
  ];
  using conn = await Deno.connect({ hostname, port: Number(port) });
  const schema = SCHEMAS[API.Metadata];
  const w = new Writer().int16(API.Metadata).int16(12).int32(1).string("test", false).noTags();
  encode(schema.req, 12, w, { topics: [], allowAutoTopicCreation: false });
  for (const part of w.frame()) await conn.write(part);
  const head = new Uint8Array(4);
  let got = 0;
  while (got < 4) got += (await conn.read(head.subarray(got)))!;
  const frame = new Uint8Array(new DataView(head.buffer).getInt32(0));
  got = 0;
  while (got < frame.length) got += (await conn.read(frame.subarray(got)))!;
  const r = new Reader(frame);
  r.int32();
  r.skipTags();
  const body = decode(schema.res, 12, r) as { brokers: { nodeId: number; rack: string | null }[] };
  return new Map(body.brokers.map((b) => [b.nodeId, b.rack]));
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
    assert.deepEqual(
      [...(await metadataRacks(leader.kafka!))].sort(),
      [[1, "core"], [9, "edge"]],
    );
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
