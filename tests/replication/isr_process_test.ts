/**
 * The ISR with real broker processes: a follower stopped with SIGSTOP leaves the ISR and
 * acks=all keeps working with 2 of 3; it rejoins after SIGCONT. With two of three brokers
 * down and min.insync.replicas 2, acks=all fails with NOT_ENOUGH_REPLICAS, nothing
 * acknowledged is lost, and service resumes when one broker returns.
 */
import assert from "node:assert/strict";
import { batchOf, Cluster, FAST_FLAGS } from "./_cluster.ts";

async function produce(
  url: string,
  topic: string,
  value: string,
): Promise<
  { status: number; body: { baseOffset?: number; error?: { code: string; message: string } } }
> {
  const res = await fetch(`${url}/v1/topics/${topic}/records?partition=0&acks=all`, {
    method: "POST",
    headers: { "content-type": "application/vnd.rill.batch" },
    body: batchOf(value),
  });
  return { status: res.status, body: await res.json() };
}

async function readValues(url: string, topic: string): Promise<string[]> {
  const res = await fetch(
    `${url}/v1/topics/${topic}/partitions/0/records?offset=0&maxBytes=8388608`,
  );
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.records.map((r: { value: string }) => r.value);
}

Deno.test("a follower stopped with SIGSTOP leaves the ISR, acks=all goes on with 2 of 3, it rejoins after SIGCONT", async () => {
  await using cluster = await Cluster.start(3);
  await cluster.explain(async () => {
    const [p0] = await cluster.createTopic("stop", 1, 3, { "min.insync.replicas": "2" });
    await cluster.waitFor("stop", (ps) => ps[0].isr.length === 3, "a full ISR");
    const leaderUrl = cluster.url(p0.leader);
    assert.equal((await produce(leaderUrl, "stop", "before")).status, 200);

    // Stop a follower that is not the controller, so only the ISR is at stake.
    const controller = (await (await fetch(`${leaderUrl}/v1/cluster`)).json()).controllerId;
    const victim = p0.replicas.find((id) => id !== p0.leader && id !== controller) ??
      p0.replicas.find((id) => id !== p0.leader)!;
    cluster.procs.get(victim)!.kill("SIGSTOP");
    try {
      // The first acks=all waits until the lagging follower is dropped, then succeeds.
      const during = await produce(leaderUrl, "stop", "during-1");
      assert.equal(during.status, 200, JSON.stringify(during.body));
      const ps = await cluster.waitFor(
        "stop",
        (ps) => !ps[0].isr.includes(victim),
        `broker ${victim} out of the ISR`,
      );
      assert.equal(ps[0].isr.length, 2);
      assert.equal((await produce(leaderUrl, "stop", "during-2")).status, 200);
    } finally {
      cluster.procs.get(victim)!.kill("SIGCONT");
    }
    await cluster.waitFor(
      "stop",
      (ps) => ps[0].isr.includes(victim),
      `broker ${victim} back in the ISR`,
    );
    assert.equal((await produce(leaderUrl, "stop", "after")).status, 200);
    assert.deepEqual(await readValues(leaderUrl, "stop"), [
      "before",
      "during-1",
      "during-2",
      "after",
    ]);
  });
});

Deno.test("two of three brokers down with min.insync.replicas 2: NOT_ENOUGH_REPLICAS, nothing acknowledged lost, service resumes", async () => {
  await using cluster = await Cluster.start(3);
  await cluster.explain(async () => {
    const [p0] = await cluster.createTopic("quorum", 1, 3, { "min.insync.replicas": "2" });
    await cluster.waitFor("quorum", (ps) => ps[0].isr.length === 3, "a full ISR");
    const acked: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await produce(cluster.url(p0.leader), "quorum", `v${i}`);
      assert.equal(r.status, 200);
      acked.push(`v${i}`);
    }
    // Kill the leader and one follower: the survivor leads alone.
    const survivor = p0.replicas.find((id) => id !== p0.leader)!;
    const down = p0.replicas.filter((id) => id !== survivor);
    for (const id of down) await cluster.kill(id);
    await cluster.waitFor(
      "quorum",
      (ps) => ps[0].leader === survivor && ps[0].isr.length === 1,
      `broker ${survivor} leading alone`,
    );
    const refused = await produce(cluster.url(survivor), "quorum", "refused");
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error!.code, "NOT_ENOUGH_REPLICAS");
    assert.match(refused.body.error!.message, /min\.insync\.replicas \(2\)/);

    // One comes back: it catches up, rejoins the ISR, and acks=all works again.
    await cluster.startBroker(down[0]);
    await cluster.waitFor(
      "quorum",
      (ps) => ps[0].isr.length === 2,
      `broker ${down[0]} back in the ISR`,
    );
    const resumed = await produce(cluster.url(survivor), "quorum", "resumed");
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    acked.push("resumed");
    assert.deepEqual(await readValues(cluster.url(survivor), "quorum"), acked);
    await cluster.stopAll();
    const hw = acked.length;
    const a = await cluster.readLog(survivor, "quorum", 0, hw);
    const b = await cluster.readLog(down[0], "quorum", 0, hw);
    assert.deepEqual(b, a, "the returning replica holds the same bytes");
  });
});

Deno.test("with a cluster secret, followers fetch as the inter-broker principal; a replica fetch without it is refused", async () => {
  await using cluster = await Cluster.start(2, [
    ...FAST_FLAGS,
    "--cluster-secret",
    "0123456789abcdef-secret",
  ]);
  await cluster.explain(async () => {
    const [p0] = await cluster.createTopic("guarded", 1, 2, { "min.insync.replicas": "2" });
    await cluster.waitFor("guarded", (ps) => ps[0].isr.length === 2, "a full ISR");
    const ok = await produce(cluster.url(p0.leader), "guarded", "x");
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const follower = p0.replicas.find((id) => id !== p0.leader)!;
    const res = await fetch(
      `${
        cluster.url(p0.leader)
      }/v1/topics/guarded/partitions/0/records?offset=0&replicaId=${follower}&leaderEpoch=${p0.leaderEpoch}`,
    );
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error.code, "CLUSTER_AUTHORIZATION_FAILED");
  });
});
