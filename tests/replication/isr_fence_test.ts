/**
 * Issue 14, D6: when a broker's session expires, the controller fences it out of every ISR
 * at once (as Kafka's controller does), rather than each leader waiting
 * `replica.lag.time.max.ms` on top. With a lag limit of 60 s here, only the controller can
 * shrink the ISR within the test's bound; acks=all then goes on with 2 of 3, and the broker
 * rejoins every ISR once it is back.
 */
import assert from "node:assert/strict";
import { batchOf, Cluster } from "./_cluster.ts";

const FLAGS = [
  "--session-timeout-ms",
  "2000",
  "--replica-lag-time-max-ms",
  "60000",
  "--metadata-poll-ms",
  "100",
];

Deno.test("a broker whose session expired leaves every ISR at once (not after replica.lag.time.max.ms), acks=all goes on, it rejoins when back", async () => {
  await using cluster = await Cluster.start(3, FLAGS);
  await cluster.explain(async () => {
    await cluster.createTopic("fence", 3, 3, { "min.insync.replicas": "2" });
    const ps = await cluster.waitFor("fence", (ps) => ps.every((p) => p.isr.length === 3), "ISRs");
    // A broker that is neither the controller nor a leader: only its ISR membership is at stake.
    const controller = (await (await fetch(`${cluster.url(1)}/v1/cluster`)).json()).controllerId;
    const leaders = new Set(ps.map((p) => p.leader));
    const victim = [1, 2, 3].find((id) => id !== controller && !leaders.has(id)) ??
      [1, 2, 3].find((id) => id !== controller)!;
    await cluster.kill(victim);
    // Bounded far below the 60 s lag limit: only the controller's fencing can do this.
    const after = await cluster.waitFor(
      "fence",
      (ps) => ps.every((p) => !p.isr.includes(victim) && p.leader >= 0),
      `broker ${victim} fenced out of every ISR`,
      20_000,
    );
    for (const p of after) {
      assert.equal(p.isr.length, 2, JSON.stringify(p));
      // A new leader (when the victim led this partition) learns its role at its next
      // metadata poll: a retriable 503 until then, as a client would retry.
      let status = 0;
      let text = "";
      for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 200));
        const leader = (await cluster.describe("fence"))[p.partition].leader;
        const res = await fetch(
          `${cluster.url(leader)}/v1/topics/fence/records?partition=${p.partition}&acks=all`,
          {
            method: "POST",
            headers: { "content-type": "application/vnd.rill.batch" },
            body: batchOf(`after-${p.partition}-${attempt}`),
            signal: AbortSignal.timeout(10_000),
          },
        );
        status = res.status;
        text = await res.text();
        if (status !== 200 && status !== 503) break;
      }
      assert.equal(status, 200, text);
    }
    await cluster.startBroker(victim);
    await cluster.waitFor(
      "fence",
      (ps) => ps.every((p) => p.isr.length === 3),
      `broker ${victim} back in every ISR`,
      30_000,
    );
  });
});
