/**
 * A hosted KV that refuses everything for 20 s while three brokers (30 ± 10 ms KV latency)
 * serve producers and consumers: produce (acks=all) and fetch go on for partitions whose ISR
 * does not change, since neither touches the KV; nothing that needs the KV is decided wrongly
 * after it (no broker is found dead because nobody could heartbeat, so no leader changes;
 * one leader per partition and epoch; committed offsets are still there); a group consumer
 * keeps its partitions and goes on reading (its heartbeats need no KV while nothing changes);
 * each broker logs the outage once, and /healthz and /metrics show it while it lasts.
 */
import assert from "node:assert/strict";
import { Transport } from "../../src/client/transport.ts";
import { KvConnectEndpoint } from "../_helpers/kv_connect_server.ts";
import { batchOf, brokerToken, Cluster, KV_FLAGS, type PartitionJson } from "./_cluster.ts";
import { Rill } from "../../mod.ts";
import { Member } from "../groups/_group_helpers.ts";

const OUTAGE_MS = 20_000;

async function health(url: string): Promise<{ kv: { reachable: boolean } }> {
  const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
  return await res.json();
}

Deno.test("a 20 s outage of the hosted KV: produce and fetch go on, nothing is decided wrongly, logged once", async () => {
  await using endpoint = await KvConnectEndpoint.start({
    tokens: [1, 2, 3].map(brokerToken),
    latencyMs: 30,
    jitterMs: 10,
  });
  await using cluster = await Cluster.start(3, KV_FLAGS, { kv: endpoint });
  await cluster.explain(async () => {
    await cluster.createTopic("out", 3, 3, { "min.insync.replicas": "2" });
    const before = await cluster.waitFor(
      "out",
      (ps) => ps.every((p) => p.isr.length === 3),
      "a full ISR",
    );
    // A committed offset, to find again after the outage.
    const commit = await fetch(`${cluster.url(1)}/v1/groups/og/offsets`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ offsets: [{ topic: "out", partition: 0, offset: 0 }] }),
    });
    assert.equal(commit.status, 200, await commit.text());

    // A group consumer (no commits in this window: commits need the KV and wait for it).
    const rill = new Rill({ brokers: [cluster.url(2)] });
    const member = new Member(rill, { groupId: "og2", sessionTimeoutMs: 6000 });
    await member.start("out", { autoCommitInterval: 600_000 });
    await member.watch.until(() => member.held.size === 3, "the group member holds 3 partitions");

    const transport = new Transport({ brokers: cluster.urls(), retry: { retries: 0 } });
    const acked: number[][] = [[], [], []];
    const read = [0, 0, 0];
    let stop = false;
    let n = 0;
    const producers = [0, 1, 2].map(async (p) => {
      for (let i = 0; !stop && i < 100_000; i++) {
        try {
          const res = await transport.request("POST", `/v1/topics/out/records`, {
            query: { partition: p, acks: "all" },
            headers: { "Content-Type": "application/vnd.rill.batch" },
            body: batchOf(`p${p}-${n++}`),
            signal: AbortSignal.timeout(5000),
          });
          acked[p].push((await res.json()).baseOffset);
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    // A consumer reading each partition from its leader (no group: fetch alone).
    const consumers = before.map(async (p) => {
      let offset = 0;
      for (let i = 0; !stop && i < 100_000; i++) {
        try {
          const res = await fetch(
            `${
              cluster.url(p.leader)
            }/v1/topics/out/partitions/${p.partition}/records?offset=${offset}&maxWaitMs=200`,
            { signal: AbortSignal.timeout(5000) },
          );
          const body = await res.json();
          if (res.ok) {
            read[p.partition] += body.records.length;
            offset = body.nextOffset;
          }
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    });
    const total = (xs: number[] | number[][]) =>
      xs.reduce((s: number, x: number | number[]) => s + (Array.isArray(x) ? x.length : x), 0);
    const waitUntil = async (cond: () => boolean | Promise<boolean>, what: string, ms: number) => {
      const end = Date.now() + ms;
      while (!(await cond())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await waitUntil(
      () => total(acked) > 30 && total(read) > 30,
      "traffic before the outage",
      20_000,
    );

    endpoint.startOutage();
    const outageStart = Date.now();
    // Every broker notices (its background calls stall) and says so on /healthz.
    await waitUntil(
      async () => {
        const hs = await Promise.all(cluster.urls().map((u) => health(u).catch(() => null)));
        return hs.every((h) => h !== null && h.kv.reachable === false);
      },
      "/healthz to show the outage on every broker",
      OUTAGE_MS - 2000,
    );
    const metrics = await (await fetch(`${cluster.url(1)}/metrics`, {
      signal: AbortSignal.timeout(10_000),
    })).text();
    assert.match(metrics, /^rill_kv_reachable 0$/m, "/metrics shows the outage");
    const ackedAtOutage = total(acked);
    const readAtOutage = total(read);
    const groupReadAtOutage = member.handled.length;
    // Traffic goes on meanwhile.
    await waitUntil(
      () => Date.now() - outageStart >= OUTAGE_MS,
      "the end of the outage window",
      OUTAGE_MS + 1000,
    );
    const ackedDuring = total(acked) - ackedAtOutage;
    const readDuring = total(read) - readAtOutage;
    const groupReadDuring = member.handled.length - groupReadAtOutage;
    endpoint.endOutage();
    assert.ok(ackedDuring > 50, `acks=all produce went on during the outage (${ackedDuring})`);
    assert.ok(readDuring > 50, `fetch went on during the outage (${readDuring})`);
    assert.ok(groupReadDuring > 50, `the group member read on (${groupReadDuring})`);

    await waitUntil(
      async () => {
        const hs = await Promise.all(cluster.urls().map((u) => health(u).catch(() => null)));
        return hs.every((h) => h !== null && h.kv.reachable === true);
      },
      "/healthz to show the KV back",
      20_000,
    );
    // Give the controller its grace period and a few ticks: nobody died, nothing moves.
    const ackedAfter = total(acked);
    await waitUntil(() => total(acked) > ackedAfter + 50, "produce after the outage", 20_000);
    await new Promise((r) => setTimeout(r, 3000)); // a window for a wrong election to show
    stop = true;
    await Promise.all([...producers, ...consumers]);
    assert.deepEqual(
      member.events.filter((e) => e.kind === "revoked"),
      [],
      "the group member kept its partitions through the outage",
    );
    await member.consumer.disconnect();

    const views: PartitionJson[][] = [];
    for (const id of [1, 2, 3]) views.push(await cluster.describe("out", id));
    for (const p of before) {
      for (const v of views) {
        assert.equal(v[p.partition].leader, p.leader, `out-${p.partition} kept its leader`);
        assert.equal(v[p.partition].leaderEpoch, p.leaderEpoch, `out-${p.partition} same epoch`);
      }
    }
    const offsets = await (await fetch(`${cluster.url(2)}/v1/groups/og/offsets`)).json();
    assert.deepEqual(
      offsets.offsets.map((o: { partition: number; offset: number }) => [o.partition, o.offset]),
      [[0, 0]],
    );
    for (const [id, proc] of cluster.procs) {
      const lines = proc.stderr().split("\n");
      const down = lines.filter((l) => l.includes("the KV has not answered")).length;
      const up = lines.filter((l) => l.includes("the KV answers again")).length;
      assert.deepEqual([down, up], [1, 1], `broker ${id} logs the outage once and its end once`);
      assert.equal(lines.filter((l) => l.includes("elected broker")).length, 0);
    }
  });
});
