/**
 * The cluster coordinating through a hosted KV: every broker's `--kv` is the URL of the test
 * KV Connect endpoint (tests/_helpers/kv_connect_server.ts) with 30 ± 10 ms added to every
 * request, each broker with its own access token. A representative subset of the
 * replication, failover, groups and auth process tests runs here (the full suites run on a
 * shared KV file; the latency figures are in `deno task bench kv`):
 *
 * - a leader SIGKILLed under acks=all load: a new leader takes over, nothing acknowledged
 *   is lost or duplicated;
 * - a consumer group over two brokers: a member leaves, the other takes over its partitions
 *   from the committed offsets, each record handled once;
 * - an API key revoked through one broker is refused by the other.
 */
import assert from "node:assert/strict";
import { Transport } from "../../src/client/transport.ts";
import { Rill } from "../../mod.ts";
import { decodeBatch, splitBatches } from "../../src/protocol/record_batch.ts";
import { KvConnectEndpoint, openRemoteKv } from "../_helpers/kv_connect_server.ts";
import { Member, produceNumbered, Watch } from "../groups/_group_helpers.ts";
import { openSecureBroker } from "../security/_secure_app.ts";
import { batchOf, brokerToken, Cluster, KV_FLAGS } from "./_cluster.ts";

const LATENCY = { latencyMs: 30, jitterMs: 10 };

async function endpointFor(ids: number[]): Promise<KvConnectEndpoint> {
  return await KvConnectEndpoint.start({ tokens: ids.map(brokerToken), ...LATENCY });
}

Deno.test("over hosted KV (30±10 ms): a SIGKILLed leader is replaced, acks=all resumes, nothing acknowledged is lost", async () => {
  await using endpoint = await endpointFor([1, 2, 3]);
  await using cluster = await Cluster.start(3, KV_FLAGS, { kv: endpoint });
  await cluster.explain(async () => {
    await cluster.createTopic("kvc", 2, 3, { "min.insync.replicas": "2" });
    await cluster.waitFor("kvc", (ps) => ps.every((p) => p.isr.length === 3), "a full ISR");

    const transport = new Transport({ brokers: cluster.urls(), retry: { retries: 0 } });
    const acked: { value: string; offset: number }[][] = [[], []];
    let stop = false;
    const producers = [0, 1].map(async (p) => {
      for (let n = 0; !stop && n < 100_000; n++) {
        const value = `p${p}-${n}`;
        try {
          const res = await transport.request("POST", `/v1/topics/kvc/records`, {
            query: { partition: p, acks: "all" },
            headers: { "Content-Type": "application/vnd.rill.batch" },
            body: batchOf(value),
            signal: AbortSignal.timeout(10_000),
          });
          acked[p].push({ value, offset: (await res.json()).baseOffset });
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });
    const ackedCount = () => acked[0].length + acked[1].length;
    const untilMoreAcked = async (than: number) => {
      for (let i = 0; i < 1000 && ackedCount() <= than; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await untilMoreAcked(10);

    for (const p of [0, 1]) {
      const victim = (await cluster.describe("kvc"))[p].leader;
      const t0 = performance.now();
      const before = acked[p].length;
      await cluster.kill(victim);
      await cluster.waitFor(
        "kvc",
        (ps) => ps[p].leader !== victim && ps[p].leader >= 0,
        `a new leader of kvc-${p} after killing broker ${victim}`,
      );
      for (let i = 0; i < 1000 && acked[p].length <= before; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(acked[p].length > before, `acks=all on kvc-${p} resumed`);
      console.log(
        `failover of kvc-${p} over KV Connect: ${
          ((performance.now() - t0) / 1000).toFixed(2)
        } s to the first acks=all success`,
      );
      await cluster.startBroker(victim);
      await cluster.waitFor("kvc", (ps) => ps.every((x) => x.isr.length === 3), "ISR back");
    }
    stop = true;
    await Promise.all(producers);

    const final = await cluster.describe("kvc");
    const hws: number[] = [];
    for (const p of final) {
      hws.push((await cluster.describe("kvc", p.leader))[p.partition].highWatermark!);
    }
    await cluster.stopAll();
    for (const p of [0, 1]) {
      const logs = await Promise.all([1, 2, 3].map((id) => cluster.readLog(id, "kvc", p, hws[p])));
      for (const log of logs.slice(1)) assert.deepEqual(log, logs[0], `kvc-${p}: replicas differ`);
      const stored = new Map<string, number>();
      for (const batch of splitBatches(logs[0])) {
        const d = decodeBatch(batch);
        d.records.forEach((r, i) => {
          const v = new TextDecoder().decode(r.value!);
          assert.equal(stored.has(v), false, `${v} is stored twice`);
          stored.set(v, d.header.baseOffset + i);
        });
      }
      for (const a of acked[p]) {
        assert.equal(stored.get(a.value), a.offset, `acknowledged ${a.value} is missing`);
      }
    }
  });
});

Deno.test("over hosted KV (30±10 ms): a group over two brokers hands a leaving member's partitions over at the committed offsets", async () => {
  await using endpoint = await endpointFor([1, 2]);
  await using cluster = await Cluster.start(2, KV_FLAGS, { kv: endpoint });
  await cluster.explain(async () => {
    await cluster.createTopic("kvg", 4, 2);
    await cluster.waitFor("kvg", (ps) => ps.every((p) => p.isr.length === 2), "a full ISR");
    const one = new Rill({ brokers: [cluster.url(1)] });
    const two = new Rill({ brokers: [cluster.url(2)] });
    await produceNumbered(one, "kvg", 4, 20);
    const watch = new Watch();
    const a = new Member(one, { groupId: "kvg", sessionTimeoutMs: 6000 }, watch);
    const b = new Member(two, { groupId: "kvg", sessionTimeoutMs: 6000 }, watch);
    await a.start("kvg", { autoCommitInterval: 100 });
    await b.start("kvg", { autoCommitInterval: 100 });
    const handled = () => a.handled.length + b.handled.length;
    await watch.until(() => a.held.size === 2 && b.held.size === 2, "2 partitions each", 30_000);
    await watch.until(() => handled() >= 80, "the first 80 records", 30_000);
    const t0 = performance.now();
    await b.consumer.disconnect();
    await watch.until(() => a.held.size === 4, "all 4 partitions on the remaining member", 30_000);
    console.log(
      `group handover over KV Connect: ${
        ((performance.now() - t0) / 1000).toFixed(2)
      } s from leave to all partitions held`,
    );
    await produceNumbered(one, "kvg", 4, 20, 20);
    await watch.until(() => handled() >= 160, "all 160 records", 30_000);
    await a.consumer.disconnect();
    const seen = new Map<string, number>();
    for (const h of [...a.handled, ...b.handled]) {
      assert.equal(h.value, `p${h.partition}-${h.offset}`);
      const k = `${h.partition}:${h.offset}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    assert.deepEqual([...seen].filter(([, n]) => n > 1), [], "records handled more than once");
    assert.equal(seen.size, 160, "records missing");
    const d = await one.admin().describeGroup("kvg");
    assert.deepEqual(d.offsets.map((o) => o.offset), [40, 40, 40, 40]);
  });
});

Deno.test("over hosted KV (30±10 ms): an API key revoked on one broker is refused by the other", async () => {
  await using endpoint = await endpointFor([1, 2]);
  const kv1 = await openRemoteKv(endpoint.url, brokerToken(1));
  const kv2 = await openRemoteKv(endpoint.url, brokerToken(2));
  try {
    await using a = await openSecureBroker({ kv: kv1, id: 1 });
    await using b = await openSecureBroker({ kv: kv2, id: 2 });
    const eve = await a.key("eve");
    await a.allow("eve", "cluster", "rill-cluster", "describe");
    assert.equal((await b.call("GET", "/v1/cluster", eve)).status, 200);
    const t0 = performance.now();
    const revoked = await a.call("DELETE", `/v1/auth/keys/${eve.split(".")[0]}`, a.admin);
    assert.equal(revoked.status, 200);
    assert.equal((await a.call("GET", "/v1/cluster", eve)).status, 401, "at once where revoked");
    // Broker 2 polls the auth version in KV: bounded wait, no event crosses brokers.
    let status = 200;
    for (let i = 0; i < 150 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await b.call("GET", "/v1/cluster", eve)).status;
    }
    assert.equal(status, 401, "broker 2 refuses the revoked key within 15 s");
    console.log(
      `key revocation over KV Connect: ${
        ((performance.now() - t0) / 1000).toFixed(2)
      } s until the other broker refuses it`,
    );
  } finally {
    kv1.close();
    kv2.close();
  }
});
