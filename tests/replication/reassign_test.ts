/**
 * Partition reassignment: a new broker receives a replica with
 * `POST /v1/topics/{t}/reassign`; it copies the partition, joins the ISR, and the move
 * completes by itself (leadership moves off a broker that is no longer a replica, whose
 * copy is deleted).
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { batchOf, Cluster } from "./_cluster.ts";

Deno.test("reassign moves a partition to a new broker: it catches up, takes the lead, the old replica is deleted", async () => {
  await using cluster = await Cluster.start(2);
  await cluster.explain(async () => {
    const [p0] = await cluster.createTopic("moving", 1, 2, { "min.insync.replicas": "2" });
    await cluster.waitFor("moving", (ps) => ps[0].isr.length === 2, "a full ISR");
    for (let i = 0; i < 30; i++) {
      const res = await fetch(
        `${cluster.url(p0.leader)}/v1/topics/moving/records?partition=0&acks=all`,
        {
          method: "POST",
          headers: { "content-type": "application/vnd.rill.batch" },
          body: batchOf(`v${i}`),
        },
      );
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
    await cluster.startBroker(3);
    const old = p0.leader;
    const kept = p0.replicas.find((id) => id !== old)!;

    // Bad requests change nothing.
    const admin = new Rill({ brokers: [cluster.url(kept)] }).admin();
    await assert.rejects(
      admin.reassignPartitions("moving", [{ partition: 0, replicas: [3, 9] }]),
      /Broker 9 is not a live broker/,
    );
    await assert.rejects(
      admin.reassignPartitions("moving", [{ partition: 0, replicas: [3] }]),
      /needs 2 distinct broker ids/,
    );
    assert.equal((await cluster.describe("moving"))[0].replicas.length, 2);

    const started = await admin.reassignPartitions("moving", [{
      partition: 0,
      replicas: [3, kept],
    }]);
    assert.deepEqual(
      (started.partitions[0] as unknown as { targetReplicas: number[] }).targetReplicas,
      [3, kept],
    );
    const [done] = await cluster.waitFor(
      "moving",
      (ps) =>
        ps[0].replicas.length === 2 && ps[0].replicas.includes(3) && !("targetReplicas" in ps[0]) &&
        ps[0].isr.length === 2,
      "the move to complete",
    );
    assert.deepEqual(done.replicas, [3, kept]);
    assert.notEqual(done.leader, old);

    // The partition keeps working through the client, which finds the new leader by itself.
    const producer = new Rill({ brokers: [cluster.url(old)] }).producer();
    await producer.send({ topic: "moving", messages: [{ value: "after" }], acks: "all" });
    const res = await fetch(
      `${cluster.url(done.leader)}/v1/topics/moving/partitions/0/records?offset=0&maxBytes=1048576`,
    );
    const body = await res.json();
    assert.deepEqual(
      body.records.map((r: { value: string }) => r.value),
      [...[...Array(30).keys()].map((i) => `v${i}`), "after"],
    );

    // The broker that left deletes its copy; the two replicas hold the same bytes.
    const oldDir = `${cluster.dir}/b${old}/moving-0`;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && await Deno.stat(oldDir).then(() => true, () => false)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await Deno.stat(oldDir).then(() => true, () => false), false);
    await cluster.stopAll();
    assert.deepEqual(
      await cluster.readLog(3, "moving", 0, 31),
      await cluster.readLog(kept, "moving", 0, 31),
    );
  });
});
