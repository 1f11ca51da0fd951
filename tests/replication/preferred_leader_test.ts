/**
 * Preferred leader election with spawned brokers: after a broker's restart its preferred
 * leaderships come back by themselves (auto.leader.rebalance), or on demand with
 * `rill cluster elect-leaders`, each with a new leader epoch, while an acks=all producer
 * runs throughout and loses nothing.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { run as clusterCli } from "../../src/cli/cluster.ts";
import { Cluster, FAST_FLAGS, type PartitionJson } from "./_cluster.ts";
import { ackedLoad, assertNoLoss } from "./_load.ts";

const leadersPerBroker = (ps: PartitionJson[], ids: number[]) =>
  ids.map((id) => ps.filter((p) => p.leader === id).length);

Deno.test("a restarted broker gets its preferred leaderships back by itself; acks=all loses nothing", async () => {
  await using cluster = await Cluster.start(3, [
    ...FAST_FLAGS,
    "--leader-imbalance-check-interval-seconds",
    "1",
  ]);
  await cluster.explain(async () => {
    await cluster.createTopic("pl", 12, 3, { "min.insync.replicas": "2" });
    const full = await cluster.waitFor("pl", (ps) => ps.every((p) => p.isr.length === 3), "ISR");
    assert.deepEqual(leadersPerBroker(full, [1, 2, 3]), [4, 4, 4]);
    const epochs = full.map((p) => p.leaderEpoch);
    const load = ackedLoad(cluster, "pl", 12);
    await load.progress(50);
    await cluster.kill(1);
    await cluster.waitFor(
      "pl",
      (ps) => ps.every((p) => p.leader !== 1 && p.leader >= 0),
      "failover",
    );
    await load.progress(50);
    await cluster.startBroker(1);
    // Back in every ISR, then within the check interval the leaderships return.
    const balanced = await cluster.waitFor(
      "pl",
      (ps) =>
        ps.every((p) => p.isr.length === 3) &&
        leadersPerBroker(ps, [1, 2, 3]).every((n) => n >= 3 && n <= 5) &&
        ps.filter((p) => p.replicas[0] === 1).every((p) => p.leader === 1),
      "broker 1 leading its preferred partitions again",
    );
    for (const p of balanced.filter((p) => p.replicas[0] === 1)) {
      assert.ok(p.leaderEpoch >= epochs[p.partition] + 2, "failover and return: new epochs");
    }
    await load.progress(50);
    await load.stop();
    await assertNoLoss(cluster, "pl", load);
  });
});

Deno.test("rill cluster elect-leaders moves leadership back on demand (auto rebalance off)", async () => {
  await using cluster = await Cluster.start(2, [
    ...FAST_FLAGS,
    "--auto-leader-rebalance-enable",
    "false",
  ]);
  await cluster.explain(async () => {
    await cluster.createTopic("ondemand", 4, 2);
    await cluster.createTopic("other", 2, 2);
    await cluster.waitFor("ondemand", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    await cluster.waitFor("other", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    await cluster.kill(1);
    await cluster.waitFor("ondemand", (ps) => ps.every((p) => p.leader === 2), "failover");
    await cluster.startBroker(1);
    const back = await cluster.waitFor(
      "ondemand",
      (ps) => ps.every((p) => p.isr.length === 2),
      "broker 1 back in the ISR",
    );
    await cluster.waitFor("other", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    assert.deepEqual(leadersPerBroker(back, [1, 2]), [0, 4], "nothing moves by itself");

    // A bad topic is refused and changes nothing.
    const admin = new Rill({ brokers: [cluster.url(2)] }).cluster();
    await assert.rejects(admin.electLeaders("nope"), /does not exist/);

    let out = "";
    const io = {
      out: (t: string) => Promise.resolve(void (out += t)),
      err: (t: string) => Promise.resolve(void (out += t)),
      stdin: () => new ReadableStream<Uint8Array>(),
    };
    const code = await clusterCli(
      ["elect-leaders", "--topic", "ondemand", "--broker", cluster.url(2)],
      io,
    );
    assert.equal(code, 0);
    assert.match(out, /Elected: 2\t/);
    const after = await cluster.waitFor(
      "ondemand",
      (ps) => leadersPerBroker(ps, [1, 2]).join() === "2,2",
      "two leaderships back on broker 1",
    );
    for (const p of after) assert.equal(p.leader, p.replicas[0]);
    const other = await cluster.describe("other");
    assert.deepEqual(leadersPerBroker(other, [1, 2]), [0, 2], "--topic limits it");
  });
});
