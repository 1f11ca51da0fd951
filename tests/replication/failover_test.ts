/**
 * Leader failover under load: 3 broker processes, replication factor 3,
 * min.insync.replicas 2. A producer sends continuously with acks=all while the test
 * SIGKILLs the leader of one partition after another and restarts it. Every acknowledged
 * record must then be on every replica once, in order, and the replicas' logs must be
 * byte-identical up to the high watermark.
 */
import assert from "node:assert/strict";
import { Transport } from "../../src/client/transport.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { decodeBatch, splitBatches } from "../../src/protocol/record_batch.ts";
import { batchOf, Cluster } from "./_cluster.ts";

const TOPIC = "orders";
const PARTITIONS = 3;
const ROUNDS = 10;

Deno.test("SIGKILL of partition leaders, 10 rounds: no acknowledged record lost or duplicated, replicas identical", async () => {
  await using cluster = await Cluster.start(3);
  await cluster.explain(async () => {
    await cluster.createTopic(TOPIC, PARTITIONS, 3, { "min.insync.replicas": "2" });
    await cluster.waitFor(TOPIC, (ps) => ps.every((p) => p.isr.length === 3), "a full ISR");

    // One sequential producer per partition; every attempt carries a new value, so a
    // retried record can never be mistaken for an acknowledged one.
    const transport = new Transport({ brokers: cluster.urls(), retry: { retries: 0 } });
    const acked: { value: string; offset: number }[][] = [...Array(PARTITIONS)].map(() => []);
    const errors = new Map<string, number>();
    let stop = false;
    const producers = [...Array(PARTITIONS).keys()].map(async (p) => {
      for (let n = 0; !stop && n < 1_000_000; n++) {
        const value = `p${p}-${n}`;
        try {
          const res = await transport.request("POST", `/v1/topics/${TOPIC}/records`, {
            query: { partition: p, acks: "all" },
            headers: { "Content-Type": "application/vnd.rill.batch" },
            body: batchOf(value),
            signal: AbortSignal.timeout(10_000),
          });
          const body = await res.json();
          acked[p].push({ value, offset: body.baseOffset });
        } catch (e) {
          const code = e instanceof RillError ? e.code : String(e).slice(0, 40);
          errors.set(code, (errors.get(code) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });

    for (let round = 0; round < ROUNDS; round++) {
      const p = round % PARTITIONS;
      const before = (await cluster.describe(TOPIC))[p];
      const victim = before.leader;
      const ackedBefore = acked.reduce((n, a) => n + a.length, 0);
      await cluster.kill(victim);
      await cluster.waitFor(
        TOPIC,
        (ps) => ps[p].leader !== victim && ps[p].leader >= 0,
        `a new leader of ${TOPIC}-${p} after killing broker ${victim}`,
      );
      await cluster.startBroker(victim);
      await cluster.waitFor(
        TOPIC,
        (ps) => ps.every((x) => x.isr.length === 3),
        `broker ${victim} back in every ISR`,
      );
      // The producer keeps getting acknowledgements across rounds.
      const deadline = Date.now() + 10_000;
      while (acked.reduce((n, a) => n + a.length, 0) <= ackedBefore && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    stop = true;
    await Promise.all(producers);

    const final = await cluster.describe(TOPIC);
    const hws: number[] = [];
    for (const p of final) {
      const d = (await cluster.describe(TOPIC, p.leader))[p.partition];
      hws.push(d.highWatermark!);
    }
    await cluster.stopAll();

    for (let p = 0; p < PARTITIONS; p++) {
      assert.ok(
        acked[p].length > 0,
        `partition ${p} got acknowledgements (errors: ${[...errors]})`,
      );
      const logs = await Promise.all([1, 2, 3].map((id) => cluster.readLog(id, TOPIC, p, hws[p])));
      for (const log of logs.slice(1)) {
        assert.deepEqual(log, logs[0], `partition ${p}: replicas differ below the high watermark`);
      }
      const values = new Map<string, number>();
      for (const batch of splitBatches(logs[0])) {
        const d = decodeBatch(batch);
        d.records.forEach((r, i) => {
          const v = new TextDecoder().decode(r.value!);
          assert.equal(values.has(v), false, `${v} is stored twice`);
          values.set(v, d.header.baseOffset + i);
        });
      }
      let last = -1;
      for (const a of acked[p]) {
        assert.equal(
          values.get(a.value),
          a.offset,
          `acknowledged ${a.value} at ${a.offset} is missing`,
        );
        assert.ok(a.offset > last, "acknowledged offsets increase");
        last = a.offset;
      }
    }
  });
});
