/**
 * The follower role (`rill follower`): an observer copies the topics it is given from
 * their leaders, serves a consumer the same records as the leader (a client with
 * `readFrom` reads there and writes to the leader), and refuses writes with an error that
 * points at the leader.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { Cluster } from "./_cluster.ts";

async function readAll(url: string, topic: string, partition: number): Promise<unknown[]> {
  const res = await fetch(
    `${url}/v1/topics/${topic}/partitions/${partition}/records?offset=0&maxBytes=8388608`,
  );
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.records;
}

Deno.test("rill follower copies its topics, serves readers the leader's records, and refuses writes pointing at the leader", async () => {
  await using cluster = await Cluster.start(1);
  await cluster.explain(async () => {
    await cluster.createTopic("edge", 2, 1);
    await cluster.createTopic("elsewhere", 1, 1);
    await cluster.startBroker(9, "follower", ["--topics", "edge"]);
    const leaderUrl = cluster.url(1);
    const followerUrl = cluster.url(9);

    // The cluster lists the observer, which never becomes controller.
    const status = await (await fetch(`${followerUrl}/v1/cluster`)).json();
    assert.equal(status.controllerId, 1);
    assert.deepEqual(
      status.brokers.map((b: { id: number; role: string }) => [b.id, b.role]),
      [[1, "broker"], [9, "follower"]],
    );

    // Writes through a client that only knows the follower land on the leader.
    const writer = new Rill({ brokers: [followerUrl] });
    const producer = writer.producer({ lingerMs: 0 });
    const sent = [];
    for (let i = 0; i < 40; i++) sent.push({ key: `k${i % 5}`, value: `v${i}` });
    await producer.send({ topic: "edge", messages: sent });
    await producer.disconnect?.();

    // A reader with readFrom fetches only from the follower and sees what the leader has.
    const hits: string[] = [];
    const reader = new Rill({
      brokers: [leaderUrl],
      readFrom: followerUrl,
      fetch: (input, init) => {
        const u = String(input instanceof Request ? input.url : input);
        if (u.includes("/partitions/")) hits.push(new URL(u).origin);
        return fetch(input, init);
      },
    });
    const consumer = reader.consumer({ maxWaitMs: 200 });
    await consumer.assign([
      { topic: "edge", partition: 0, offset: "earliest" },
      { topic: "edge", partition: 1, offset: "earliest" },
    ]);
    const got: string[] = [];
    let done!: () => void;
    const all = new Promise<void>((r) => done = r);
    await consumer.run({
      eachMessage: ({ message }) => {
        got.push(message.valueString()!);
        if (got.length === sent.length) done();
      },
    });
    await all;
    await consumer.stop();
    assert.deepEqual([...got].sort(), sent.map((m) => m.value).sort());
    assert.ok(hits.length > 0);
    assert.deepEqual(
      [...new Set(hits)],
      [new URL(followerUrl).origin],
      "reads went to the follower",
    );

    for (const p of [0, 1]) {
      assert.deepEqual(await readAll(followerUrl, "edge", p), await readAll(leaderUrl, "edge", p));
    }

    // Writes to the follower are refused with the leader's address.
    const res = await fetch(`${followerUrl}/v1/topics/edge/records?acks=1`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ records: [{ value: "x", partition: 0 }] }),
    });
    const body = await res.json();
    assert.equal(res.status, 503);
    assert.equal(body.error.code, "NOT_LEADER_OR_FOLLOWER");
    assert.equal(body.error.leaderId, 1);
    assert.equal(body.error.leaderUrl, leaderUrl);
    assert.match(body.error.message, /leader is broker 1/);

    // A topic it was not given is not copied.
    const other = await fetch(`${followerUrl}/v1/topics/elsewhere/partitions/0/records?offset=0`);
    assert.equal(other.status, 503);
    assert.equal((await other.json()).error.code, "NOT_LEADER_OR_FOLLOWER");
  });
});
