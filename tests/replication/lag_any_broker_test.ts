/**
 * Lag from any broker: `GET /v1/groups/{g}/offsets` answers every partition's log end
 * offset and lag through every broker of the cluster, also those that do not lead (or host)
 * the partition: they use the leader's latest report (written with its heartbeat) and say
 * how old it is.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { Cluster, FAST_FLAGS } from "./_cluster.ts";

interface OffsetsAnswer {
  offsets: {
    topic: string;
    partition: number;
    offset: number;
    logEndOffset: number | null;
    lag: number | null;
    logEndOffsetAgeMs: number | null;
  }[];
  totalLag: number;
}

Deno.test("group lag read through each broker of a 3-broker cluster is identical and correct", async () => {
  await using cluster = await Cluster.start(3, FAST_FLAGS);
  await cluster.explain(async () => {
    await cluster.createTopic("lagged", 3, 1);
    const produced = [7, 4, 10];
    const producer = new Rill({ brokers: cluster.urls() }).producer();
    for (let p = 0; p < 3; p++) {
      await producer.send({
        topic: "lagged",
        acks: "all",
        messages: [...Array(produced[p]).keys()].map((i) => ({ partition: p, value: `v${i}` })),
      });
    }
    const committed = [3, 0, 10];
    const res = await fetch(`${cluster.url(1)}/v1/groups/watchers/offsets`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        offsets: committed.map((offset, partition) => ({ topic: "lagged", partition, offset })),
      }),
    });
    assert.ok(res.ok, await res.text());
    const expected = produced.map((n, p) => n - committed[p]);
    const answers = new Map<number, OffsetsAnswer>();
    const deadline = Date.now() + 15_000;
    for (const id of [1, 2, 3]) {
      for (;;) {
        const r = await fetch(`${cluster.url(id)}/v1/groups/watchers/offsets`);
        const body: OffsetsAnswer = await r.json();
        const ends = body.offsets.map((o) => o.logEndOffset);
        if (JSON.stringify(ends) === JSON.stringify(produced) || Date.now() > deadline) {
          answers.set(id, body);
          break;
        }
        // a leader's report reaches KV with its next heartbeat
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const leaders = await cluster.describe("lagged");
    for (const [id, body] of answers) {
      assert.deepEqual(body.offsets.map((o) => o.logEndOffset), produced, `via broker ${id}`);
      assert.deepEqual(body.offsets.map((o) => o.lag), expected, `via broker ${id}`);
      assert.equal(body.totalLag, expected.reduce((a, b) => a + b, 0), `via broker ${id}`);
      for (const o of body.offsets) {
        if (leaders[o.partition].leader === id) assert.equal(o.logEndOffsetAgeMs, 0, "live");
        else assert.ok(o.logEndOffsetAgeMs! >= 0, "a reported figure has an age");
      }
    }
    // `rill groups describe` shows the same through a broker leading only one partition.
    const admin = new Rill({ brokers: [cluster.url(2)] }).admin();
    const offsets = await admin.fetchGroupOffsets("watchers");
    assert.deepEqual(offsets.map((o) => o.lag), expected);
  });
});
