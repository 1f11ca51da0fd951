/**
 * Re-replication with spawned brokers: a broker dead for longer than
 * `--replica-replacement-delay-ms` has its replicas rebuilt on the live brokers (through
 * the reassignment path), so every partition is back to its replication factor; when the
 * dead broker returns, its stale replicas are deleted, not resurrected.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { Cluster, FAST_FLAGS } from "./_cluster.ts";
import { ackedLoad, assertNoLoss } from "./_load.ts";

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("replicas of a broker dead past the replacement delay are rebuilt; on return its copies are deleted", async () => {
  await using cluster = await Cluster.start(4, [
    ...FAST_FLAGS,
    "--replica-replacement-delay-ms",
    "2000",
  ]);
  await cluster.explain(async () => {
    await cluster.createTopic("heal", 8, 3, { "min.insync.replicas": "2" });
    const full = await cluster.waitFor("heal", (ps) => ps.every((p) => p.isr.length === 3), "ISR");
    const load = ackedLoad(cluster, "heal", 8, 20);
    await load.progress(40);
    const victim = 4;
    const hosted = full.filter((p) => p.replicas.includes(victim)).map((p) => p.partition);
    assert.ok(hosted.length > 0);
    await cluster.kill(victim);
    const healed = await cluster.waitFor(
      "heal",
      (ps) =>
        ps.every((p) =>
          !("targetReplicas" in p) && p.replicas.length === 3 && !p.replicas.includes(victim) &&
          p.isr.length === 3
        ),
      "every partition back to 3 in-sync replicas on live brokers",
      40_000,
    );
    for (const p of healed) assert.equal(new Set(p.replicas).size, 3);
    await load.progress(40);

    // The dead broker returns: the partitions moved away are deleted from its disk.
    await cluster.startBroker(victim);
    const deadline = Date.now() + 15_000;
    for (const p of hosted) {
      const dir = `${cluster.dir}/b${victim}/heal-${p}`;
      while (Date.now() < deadline && await exists(dir)) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(await exists(dir), false, `stale replica heal-${p} deleted`);
    }
    const after = await cluster.describe("heal");
    assert.ok(after.every((p) => !p.replicas.includes(victim)), "nothing comes back to it");
    await load.stop();
    await assertNoLoss(cluster, "heal", load);
  });
});

Deno.test("a move whose target broker dies for good is re-targeted to a live broker", async () => {
  await using cluster = await Cluster.start(3, [
    ...FAST_FLAGS,
    "--replica-replacement-delay-ms",
    "1500",
    "--replication-throttle-bytes",
    "200000",
  ]);
  await cluster.explain(async () => {
    await cluster.createTopic("retarget", 6, 2);
    await cluster.waitFor("retarget", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    const producer = new Rill({ brokers: cluster.urls() }).producer();
    const value = "y".repeat(1000);
    for (let p = 0; p < 6; p++) {
      for (let i = 0; i < 4; i++) {
        await producer.send({
          topic: "retarget",
          acks: "all",
          messages: [...Array(100)].map(() => ({ partition: p, value })),
        });
      }
    }
    await cluster.startBroker(4);
    // sizes reach KV with the leaders' heartbeats; then the plan moves replicas onto 4
    await new Promise((r) => setTimeout(r, 1000));
    const plan = await new Rill({ brokers: [cluster.url(1)] }).cluster().rebalance({
      execute: true,
    });
    assert.ok(plan.moves.some((m) => m.replicas.includes(4)), "moves onto broker 4");
    await cluster.waitFor(
      "retarget",
      (ps) => ps.some((p) => (p as { targetReplicas?: number[] }).targetReplicas?.includes(4)),
      "a move onto broker 4 under way",
    );
    await cluster.kill(4);
    const healed = await cluster.waitFor(
      "retarget",
      (ps) =>
        ps.every((p) =>
          !("targetReplicas" in p) && p.replicas.length === 2 && !p.replicas.includes(4) &&
          p.isr.length === 2
        ),
      "every move finished on live brokers",
      40_000,
    );
    for (const p of healed) assert.equal(new Set(p.replicas).size, 2);
  });
});

Deno.test("racks: a new topic spans both racks, and so does every partition rebuilt after a loss", async () => {
  await using cluster = await Cluster.start(0, [
    ...FAST_FLAGS,
    "--replica-replacement-delay-ms",
    "1000",
  ]);
  const racks = new Map([[1, "a"], [2, "a"], [3, "b"], [4, "b"]]);
  for (const [id, rack] of racks) await cluster.startBroker(id, "broker", ["--rack", rack]);
  await cluster.explain(async () => {
    const spansRacks = (p: { replicas: number[] }) =>
      new Set(p.replicas.map((id) => racks.get(id))).size === 2;
    await cluster.createTopic("zones", 8, 2);
    const full = await cluster.waitFor("zones", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    for (const p of full) assert.ok(spansRacks(p), `zones-${p.partition} on ${p.replicas}`);
    const load = ackedLoad(cluster, "zones", 8, 20);
    await load.progress(20);
    await cluster.kill(1);
    const healed = await cluster.waitFor(
      "zones",
      (ps) =>
        ps.every((p) => !("targetReplicas" in p) && !p.replicas.includes(1) && p.isr.length === 2),
      "every partition back to 2 in-sync replicas on live brokers",
      40_000,
    );
    // broker 1's replicas went to broker 2, the only other broker of rack a
    for (const p of healed) assert.ok(spansRacks(p), `zones-${p.partition} on ${p.replicas}`);
    await load.progress(20);
    await load.stop();
    await assertNoLoss(cluster, "zones", load);
  });
});
