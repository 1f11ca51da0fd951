/**
 * Compaction with replication, on real broker processes: a follower that was down while
 * the leader compacted copies the leader's log through its offset gaps (`follower_gaps.ts`),
 * catches up and rejoins the ISR; afterwards both hold each key's latest record at the same
 * offset, and nothing else than records produced there.
 */
import assert from "node:assert/strict";
import { PartitionLog } from "../../src/storage/mod.ts";
import { Cluster, FAST_FLAGS } from "../replication/_cluster.ts";
import { keyedBatch, type KeyedRecord, readKeyed } from "../storage/_compaction_fixtures.ts";

const TOPIC = "table";

async function produce(url: string, key: string, value: string, acks: "1" | "all") {
  const res = await fetch(`${url}/v1/topics/${TOPIC}/records?partition=0&acks=${acks}`, {
    method: "POST",
    headers: { "content-type": "application/vnd.rill.batch" },
    body: keyedBatch([{ key, value }]) as Uint8Array<ArrayBuffer>,
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.baseOffset as number;
}

/** How many records a broker serves for the partition (log start to HW), and its HW. */
async function served(url: string): Promise<{ count: number; highWatermark: number }> {
  let count = 0;
  let offset = 0;
  for (let i = 0; i < 10_000; i++) {
    const res = await fetch(`${url}/v1/topics/${TOPIC}/partitions/0/records?offset=${offset}`);
    const body = await res.json();
    count += body.records.length;
    if (body.nextOffset >= body.highWatermark || body.nextOffset <= offset) {
      return { count, highWatermark: body.highWatermark };
    }
    offset = body.nextOffset;
  }
  throw new Error("never reached the high watermark");
}

/** Bounded polling (a background pass in another process has no event to await). */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      // starting up: ask again
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function records(cluster: Cluster, id: number): Promise<KeyedRecord[]> {
  const log = await PartitionLog.open(`${cluster.dir}/b${id}/${TOPIC}-0`);
  try {
    return await readKeyed(log);
  } finally {
    await log.close();
  }
}

Deno.test("a follower back after the leader compacted copies the log through its gaps and rejoins the ISR", async () => {
  await using cluster = await Cluster.start(2, [
    ...FAST_FLAGS,
    "--log-cleaner-backoff-ms",
    "100",
  ]);
  await cluster.explain(async () => {
    const [p0] = await cluster.createTopic(TOPIC, 1, 2, {
      "cleanup.policy": "compact",
      "segment.bytes": "1024",
      "min.cleanable.dirty.ratio": "0.01",
    });
    const leader = p0.leader;
    const follower = p0.replicas.find((id) => id !== leader)!;
    const leaderUrl = cluster.url(leader);
    await cluster.waitFor(TOPIC, (ps) => ps[0].isr.length === 2, "a full ISR");
    const appended = new Map<number, { key: string; value: string }>();
    const pad = "p".repeat(60);
    for (let i = 0; i < 5; i++) {
      const value = `before-${i}-${pad}`;
      appended.set(await produce(leaderUrl, `k${i}`, value, "all"), { key: `k${i}`, value });
    }
    await cluster.kill(follower);

    let next = 5;
    for (let i = 0; i < 120; i++) {
      const key = `k${i % 5}`;
      const value = `after-${i}-${pad}`;
      const offset = await produce(leaderUrl, key, value, "1");
      appended.set(offset, { key, value });
      next = offset + 1;
    }
    await cluster.waitFor(
      TOPIC,
      (ps) => !ps[0].isr.includes(follower),
      `broker ${follower} out of the ISR`,
    );
    await until(async () => {
      const s = await served(leaderUrl);
      return s.highWatermark === next && s.count < 60;
    }, "the leader to compact up to its high watermark");

    await cluster.startBroker(follower);
    await cluster.waitFor(
      TOPIC,
      (ps) => ps[0].isr.includes(follower),
      `broker ${follower} back in the ISR`,
    );
    await cluster.stopAll();
    const [a, b] = [await records(cluster, leader), await records(cluster, follower)];
    for (const log of [a, b]) {
      for (const r of log) {
        assert.deepEqual({ key: r.key, value: r.value }, appended.get(r.offset), `${r.offset}`);
      }
      const latest = new Map<string, number>();
      for (const [offset, r] of appended) latest.set(r.key, offset);
      for (const offset of latest.values()) {
        assert.ok(log.some((r) => r.offset === offset), `latest record ${offset} kept`);
      }
      assert.ok(log.length < next, "compacted");
    }
  });
});
