/**
 * Taking moves back, with spawned brokers sharing one KV: `rill cluster cancel-moves` rolls
 * a move under way back (the partition keeps its old replicas, the partial new replica is
 * deleted from the target's disk) and drops the planned ones; `rill cluster recommission`
 * stops a decommission (the broker keeps its remaining replicas and may get new ones).
 * An acks=all producer runs throughout and loses nothing.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { Cluster, FAST_FLAGS, type PartitionJson } from "./_cluster.ts";
import { ackedLoad, assertNoLoss } from "./_load.ts";
import { cli, fill, waitStatus } from "./_balance.ts";

/** A slow copy (the throttle) and one move at a time, so moves can be caught under way. */
const SLOW_MOVES = [
  ...FAST_FLAGS,
  "--replication-throttle-bytes",
  "100000",
  "--max-concurrent-moves",
  "1",
];

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Waits (bounded) until `path` exists or is gone: another process creates or deletes it. */
async function waitPath(path: string, present: boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && await exists(path) !== present) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(await exists(path), present, what);
}

const replicasOf = (ps: PartitionJson[]) => ps.map((p) => p.replicas);

Deno.test("cancel-moves: a move under way rolls back, its partial replica is deleted, nothing lost", async () => {
  await using cluster = await Cluster.start(3, SLOW_MOVES);
  await cluster.explain(async () => {
    await cluster.createTopic("undo", 6, 2);
    await cluster.waitFor("undo", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    await fill(cluster, "undo", 6, 500, 1000);
    const before = await cluster.describe("undo");
    const load = ackedLoad(cluster, "undo", 6, 20);
    await load.progress(30);
    await cluster.startBroker(4);
    await waitStatus(cluster, 1, (s) => s.unknownSizes === 0, "every partition's size reported");
    const plan = await new Rill({ brokers: [cluster.url(1)] }).cluster().rebalance({
      execute: true,
    });
    assert.ok(plan.moves.length >= 2, `moves planned: ${plan.moves.length}`);

    // one move copies onto broker 4 (slowly), the others wait
    const onto4 = (m: { target: number[]; previous: number[] | null }) =>
      m.target.includes(4) && !m.previous!.includes(4);
    const under = await waitStatus(cluster, 2, (s) => s.moving.some(onto4), "a copy under way");
    const moving = under.moving.find(onto4)!;
    assert.deepEqual(moving.previous, before[moving.partition].replicas);
    const partial = `${cluster.dir}/b4/undo-${moving.partition}`;
    await waitPath(partial, true, "the new replica exists on broker 4");

    const out = await cli(["cancel-moves", "--broker", cluster.url(3)]);
    assert.match(out, /^Dropped: [1-9]\d* planned move\(s\)\tRolled back: 1\tNot rolled back: 0\n/);
    assert.match(out, new RegExp(`undo-${moving.partition}\tback to \\[${moving.previous}\\]`));

    // every partition keeps its old replica set, in sync again; nothing is left to move
    const settled = await waitStatus(
      cluster,
      1,
      (s) => s.moving.length === 0 && s.pending === 0 && s.underReplicated === 0,
      "the cluster to settle",
    );
    assert.equal(settled.brokers.find((b) => b.id === 4)!.replicas, 0);
    assert.equal(settled.plan, null, "no plan left");
    const after = await cluster.describe("undo");
    assert.deepEqual(replicasOf(after), replicasOf(before));
    assert.ok(after[moving.partition].leaderEpoch > before[moving.partition].leaderEpoch);
    await waitPath(partial, false, "the partial replica is deleted from broker 4");
    // the controller starts none of the dropped moves later
    await load.progress(40);
    assert.deepEqual(replicasOf(await cluster.describe("undo")), replicasOf(before));

    await load.stop();
    await assertNoLoss(cluster, "undo", load);
  });
});

Deno.test("recommission: a decommission stops, the broker keeps and gets replicas again", async () => {
  await using cluster = await Cluster.start(3, SLOW_MOVES);
  await cluster.explain(async () => {
    await cluster.createTopic("keep", 6, 2);
    await cluster.waitFor("keep", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    await fill(cluster, "keep", 6, 500, 1000);
    const load = ackedLoad(cluster, "keep", 6, 20);
    await load.progress(30);
    const on3 = (await cluster.describe("keep")).filter((p) => p.replicas.includes(3)).length;
    assert.ok(on3 >= 2, `broker 3 holds ${on3} replicas`);

    await cli(["decommission", "--id", "3", "--broker", cluster.url(1)]);
    const off3 = (m: { target: number[]; previous: number[] | null }) =>
      m.previous!.includes(3) && !m.target.includes(3);
    const under = await waitStatus(
      cluster,
      2,
      (s) => s.moving.some(off3),
      "a move off 3 under way",
    );
    const moving = under.moving.find(off3)!;

    const out = await cli(["recommission", "--id", "3", "--broker", cluster.url(2)]);
    assert.match(out, /^Broker 3 is no longer decommissioned\.\n/);
    assert.match(out, /Rolled back: 1\t/);
    const settled = await waitStatus(
      cluster,
      1,
      (s) => s.moving.length === 0 && s.pending === 0 && s.underReplicated === 0,
      "the cluster to settle",
    );
    const b3 = settled.brokers.find((b) => b.id === 3)!;
    assert.equal(b3.decommissioned, false);
    assert.equal(b3.safeToStop, false);
    // only the moves that had finished before took replicas off it
    assert.ok(b3.replicas >= 1, `broker 3 kept replicas: ${b3.replicas}`);
    const ps = await cluster.describe("keep");
    assert.ok(ps[moving.partition].replicas.includes(3), "the move under way was rolled back");
    // it may hold replicas again: a new topic over all three brokers uses it
    await cluster.createTopic("again", 3, 3);
    assert.ok((await cluster.describe("again")).every((p) => p.replicas.includes(3)));
    // taking it back twice is an error that changes nothing
    await assert.rejects(
      new Rill({ brokers: [cluster.url(1)] }).cluster().recommission(3),
      /Broker 3 is not being decommissioned/,
    );

    await load.progress(30);
    await load.stop();
    await assertNoLoss(cluster, "keep", load);
  });
});
