/**
 * The sender side of the replication throttle, with spawned brokers: a decommission whose
 * moves are all copied from one leader to three brokers never has that leader send move
 * traffic faster than `--replication-throttle-bytes`, whether the controller runs the moves
 * one at a time (`--max-concurrent-moves-per-broker`, default 1) or all at once (then the
 * leader's own sending rate holds it, Kafka's `leader.replication.throttled.rate`), and an
 * acks=all producer running throughout loses nothing.
 */
import assert from "node:assert/strict";
import { Cluster, FAST_FLAGS } from "./_cluster.ts";
import { ackedLoad, assertNoLoss } from "./_load.ts";
import { cli, fill, waitStatus } from "./_balance.ts";

/** the throttle, bytes per second */
const RATE = 1_000_000;
const PARTITIONS = 3;

/** The bytes broker `id` has served to followers (`rill_replication_out_bytes_total`). */
async function sentBytes(cluster: Cluster, id: number): Promise<number> {
  const text = await (await fetch(`${cluster.url(id)}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("rill_replication_out_bytes_total")) sum += Number(line.split(" ").pop());
  }
  return sum;
}

async function decommissionFromOneLeader(perBroker: number | undefined): Promise<void> {
  await using cluster = await Cluster.start(0, [
    ...FAST_FLAGS,
    "--replication-throttle-bytes",
    String(RATE),
    ...(perBroker ? ["--max-concurrent-moves-per-broker", String(perBroker)] : []),
  ]);
  await cluster.explain(async () => {
    // Broker 4 alone holds (and leads) every partition, 1.5 MB each: a decommission sends
    // all of it from broker 4, to the three other brokers.
    await cluster.startBroker(4);
    await cluster.createTopic("off", PARTITIONS, 1);
    await fill(cluster, "off", PARTITIONS, 1500, 1000);
    for (const id of [1, 2, 3]) await cluster.startBroker(id);
    const load = ackedLoad(cluster, "off", PARTITIONS, 20);
    await load.progress(20);
    await waitStatus(cluster, 1, (s) => s.brokers.length === 4, "4 brokers registered");

    const before = await sentBytes(cluster, 4);
    const t0 = performance.now();
    const out = await cli(["decommission", "--id", "4", "--broker", cluster.url(1)]);
    assert.match(out, /^Executing: 3 move\(s\)/);
    // The bound: the rate since the start, plus, per move, the receiver's idle credit
    // (a quarter second), its first fetch (a quarter second) and one batch over it, plus the
    // producer's own records. Three moves at once (3 times the rate) break it within 1.5 s.
    const slackPerMove = RATE / 2 + 64 * 1024;
    const bound = (ms: number) => RATE * ms / 1000 + PARTITIONS * slackPerMove + 100_000;
    // What broker 4 has sent, sampled while the moves run (upper bounds only: a loaded
    // machine copies slower, never faster).
    let moving = true;
    let mostMoving = 0;
    const samples: { ms: number; sent: number }[] = [];
    const sampler = (async () => {
      while (moving) {
        const sent = (await sentBytes(cluster, 4)) - before;
        samples.push({ ms: performance.now() - t0, sent });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const done = await waitStatus(
      cluster,
      2,
      (s) => {
        mostMoving = Math.max(mostMoving, s.moving.length);
        return s.moving.length === 0 && s.pending === 0 &&
          s.brokers.find((b) => b.id === 4)!.safeToStop;
      },
      "broker 4 to be empty",
      60_000,
    ).finally(() => moving = false);
    await sampler;
    if (perBroker === undefined) assert.equal(mostMoving, 1, "one move off broker 4 at a time");
    else assert.ok(mostMoving > 1, `moves under way at once: ${mostMoving}`);
    assert.equal(done.brokers.find((b) => b.id === 4)!.replicas, 0);
    const last = samples[samples.length - 1];
    assert.ok(last.sent >= PARTITIONS * 1_500_000, `broker 4 sent ${last.sent} bytes`);
    assert.ok(samples.length >= 10, `${samples.length} samples`);
    for (const { ms, sent } of samples) {
      assert.ok(sent <= bound(ms), `broker 4 had sent ${sent} bytes after ${ms.toFixed(0)} ms`);
    }

    await load.progress(20);
    await load.stop();
    await assertNoLoss(cluster, "off", load);
  });
}

Deno.test("a decommission copied from one leader, one move at a time (the default), sends at most the throttle's rate; nothing lost", () =>
  decommissionFromOneLeader(undefined));

Deno.test("three moves at once from one leader: its sending rate holds them to the throttle; nothing lost", () =>
  decommissionFromOneLeader(3));
