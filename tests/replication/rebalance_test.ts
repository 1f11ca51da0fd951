/**
 * Scale-out, decommission and controller failover during moves, with spawned brokers:
 * `rill cluster rebalance --execute` spreads replicas onto a new broker (counts within one,
 * bytes within 15%), `rill cluster decommission --id N` empties a broker under live
 * traffic, and a controller killed while moves run leaves them to the next controller.
 * An acks=all producer runs throughout and loses nothing.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import type { ClusterStatus } from "../../src/client/cluster_ops.ts";
import { Cluster, FAST_FLAGS } from "./_cluster.ts";
import { ackedLoad, assertNoLoss, deliveryReport } from "./_load.ts";
import { cli, fill, waitStatus } from "./_balance.ts";

const settled = (s: ClusterStatus) => s.moving.length === 0 && s.pending === 0;

Deno.test("3 -> 4 brokers: rebalance --execute evens replicas and bytes; nothing lost", async () => {
  await using cluster = await Cluster.start(3, [
    ...FAST_FLAGS,
    "--replication-throttle-bytes",
    "4000000",
  ]);
  await cluster.explain(async () => {
    await cluster.createTopic("grow", 12, 2);
    await cluster.waitFor("grow", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    await fill(cluster, "grow", 12, 100, 1000);
    const load = ackedLoad(cluster, "grow", 12, 20);
    await load.progress(30);
    await cluster.startBroker(4);
    // every leader has reported its size (with its heartbeat)
    await waitStatus(cluster, 1, (s) => s.unknownSizes === 0, "every partition's size reported");

    const dry = await cli(["rebalance", "--broker", cluster.url(1)]);
    assert.match(dry, /^Dry run: [1-9]\d* move\(s\)/);
    assert.ok((await cluster.describe("grow")).every((p) => !p.replicas.includes(4)), "dry run");

    const run = await cli(["rebalance", "--execute", "--broker", cluster.url(2)]);
    assert.match(run, /^Executing: [1-9]\d* move\(s\)/);
    const done = await waitStatus(
      cluster,
      3,
      (s) =>
        settled(s) && s.underReplicated === 0 && s.unknownSizes === 0 &&
        s.brokers.find((b) => b.id === 4)!.replicas > 0,
      "the rebalance to finish",
      60_000,
    );
    const counts = done.brokers.map((b) => b.replicas);
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `replicas per broker ${counts}`);
    const bytes = done.brokers.map((b) => b.bytes);
    const mean = bytes.reduce((a, b) => a + b, 0) / bytes.length;
    assert.ok(Math.max(...bytes) - Math.min(...bytes) <= 0.15 * mean, `bytes per broker ${bytes}`);
    assert.match(await cli(["status", "--broker", cluster.url(4)]), /Broker: 4\t.*Replicas: 6/);
    await load.progress(30);
    await load.stop();
    await assertNoLoss(cluster, "grow", load);
  });
});

Deno.test("decommission under live traffic: the broker ends empty, consumers read on, nothing lost", async () => {
  await using cluster = await Cluster.start(3, FAST_FLAGS);
  await cluster.explain(async () => {
    await cluster.createTopic("shrink", 6, 2);
    await cluster.waitFor("shrink", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    const load = ackedLoad(cluster, "shrink", 6, 20);
    const consumer = new Rill({ brokers: [cluster.url(1), cluster.url(2)] }).consumer({
      maxWaitMs: 200,
    });
    await consumer.assign([...Array(6).keys()].map((p) => ({
      topic: "shrink",
      partition: p,
      offset: "earliest" as const,
    })));
    const seen: string[][] = [...Array(6)].map(() => []);
    let want: string[][] | null = null; // set once the load stopped
    const all = Promise.withResolvers<void>();
    const complete = () =>
      want !== null && want.every((w, p) => w.every((v) => seen[p].includes(v)));
    let readError: unknown = null;
    const reader = (async () => {
      try {
        for await (const m of consumer) {
          seen[m.partition].push(m.valueString()!);
          if (complete()) all.resolve();
        }
      } catch (e) {
        readError = e;
      }
    })();
    await load.progress(30);

    await assert.rejects(
      new Rill({ brokers: [cluster.url(1)] }).cluster().decommission(9),
      /not a registered broker/,
    );
    const out = await cli(["decommission", "--id", "3", "--broker", cluster.url(1)]);
    assert.match(out, /^Executing: [1-9]\d* move\(s\)/);
    const done = await waitStatus(
      cluster,
      2,
      (s) => settled(s) && s.brokers.find((b) => b.id === 3)!.safeToStop,
      "broker 3 to be empty",
    );
    assert.equal(done.brokers.find((b) => b.id === 3)!.replicas, 0);
    assert.match(await cli(["status", "--broker", cluster.url(1)]), /Decommissioned: safe to stop/);
    // a new topic places nothing on it
    await cluster.createTopic("after", 3, 2);
    assert.ok((await cluster.describe("after")).every((p) => !p.replicas.includes(3)));

    await load.progress(30);
    await load.stop();
    // the consumer reads every acknowledged record, in order, across the moves (bounded wait)
    const wanted = load.acked.map((a) => a.map((x) => x.value));
    want = wanted;
    if (complete()) all.resolve();
    const timer = setTimeout(() => all.resolve(), 20_000);
    await all.promise;
    clearTimeout(timer);
    // A partition short of records: what each replica holds and where the consumer is, then
    // the stored logs decide whether it is a loss or only not delivered.
    const short = wanted.flatMap((_, p) => {
      const got = new Set(seen[p]);
      const missing = load.acked[p].filter((a) => !got.has(a.value));
      return missing.length > 0 ? [{ p, missing }] : [];
    });
    const report = short.length === 0 ? "" : await deliveryReport(
      cluster,
      "shrink",
      short.map(({ p, missing }) =>
        `partition ${p}: acked ${wanted[p].length}, consumer saw ${seen[p].length}, position ${
          consumer.position("shrink", p)
        }, missing ${missing.length} from ${missing[0].value}@${missing[0].offset} to ${
          missing.at(-1)!.value
        }@${missing.at(-1)!.offset}`
      ),
      short.map(({ p }) => p),
      [1, 2],
    ) + (readError ? `\nthe consumer failed: ${readError}` : "");
    await consumer.stop();
    await reader;
    await cluster.kill(3);
    try {
      await assertNoLoss(cluster, "shrink", load);
    } catch (e) {
      if (e instanceof Error) e.message = `ACKNOWLEDGED RECORDS LOST: ${e.message}\n${report}`;
      throw e;
    }
    assert.equal(
      report,
      "",
      "every replica stores every acked record (no loss), but the consumer did not deliver them",
    );
    for (let p = 0; p < 6; p++) {
      const got = seen[p].filter((v) => wanted[p].includes(v));
      assert.deepEqual(
        got,
        wanted[p],
        `partition ${p}: the consumer saw every acked record in order`,
      );
    }
  });
});

Deno.test("a controller killed while moves run: the next one finishes them, no ISR ends smaller", async () => {
  await using cluster = await Cluster.start(3, [
    ...FAST_FLAGS,
    "--replication-throttle-bytes",
    "300000",
    "--max-concurrent-moves",
    "2",
  ]);
  await cluster.explain(async () => {
    await cluster.createTopic("move", 6, 2);
    await cluster.waitFor("move", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    await fill(cluster, "move", 6, 300, 1000);
    await cluster.startBroker(4);
    await waitStatus(cluster, 1, (s) => s.unknownSizes === 0, "every partition's size reported");
    const before = await cluster.describe("move");
    const ops = new Rill({ brokers: [cluster.url(4)] }).cluster();
    const plan = await ops.rebalance({ execute: true });
    assert.ok(plan.moves.length >= 2, `moves planned: ${plan.moves.length}`);
    await waitStatus(cluster, 4, (s) => s.moving.length > 0, "a move under way");
    const controller = (await new Rill({ brokers: [cluster.url(4)] }).admin().describeCluster())
      .controllerId;
    await cluster.kill(controller);
    await cluster.startBroker(controller);
    await waitStatus(
      cluster,
      4,
      (s) => settled(s) && s.underReplicated === 0,
      "the moves to finish under the next controller",
      60_000,
    );
    const after = await cluster.describe("move");
    for (const p of after) {
      assert.equal(p.replicas.length, 2);
      assert.ok(p.isr.length >= before[p.partition].isr.length, `partition ${p.partition} ISR`);
    }
    assert.ok(after.some((p) => p.replicas.includes(4)), "broker 4 got replicas");
  });
});

Deno.test("continuous balancing: a new broker gets its share without an operator", async () => {
  await using cluster = await Cluster.start(3, [
    ...FAST_FLAGS,
    "--auto-rebalance-interval-seconds",
    "1",
  ]);
  await cluster.explain(async () => {
    await cluster.createTopic("auto", 8, 2);
    await cluster.waitFor("auto", (ps) => ps.every((p) => p.isr.length === 2), "ISR");
    await cluster.startBroker(4);
    const done = await waitStatus(
      cluster,
      1,
      (s) =>
        settled(s) && s.underReplicated === 0 &&
        Math.max(...s.brokers.map((b) => b.replicas)) -
              Math.min(...s.brokers.map((b) => b.replicas)) <= 1,
      "broker 4 to get its share",
    );
    assert.equal(done.brokers.find((b) => b.id === 4)!.replicas, 4);
  });
});
