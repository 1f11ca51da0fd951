/**
 * A follower that comes back after the leader's retention deleted the segments past its log
 * end offset: the leader answers its fetch with OFFSET_OUT_OF_RANGE (the leader's log start
 * offset in the details), the follower empties its log, restarts it at the leader's log
 * start offset (Kafka's truncateFullyAndStartAt), catches up and rejoins the ISR; its log
 * then holds the leader's records byte for byte. Real broker processes, one shared KV file.
 */
import assert from "node:assert/strict";
import { parseReplicationArgs } from "../../src/cli/broker_replication.ts";
import { UsageError } from "../../src/cli/common.ts";
import { PartitionLog } from "../../src/storage/mod.ts";
import { batchOf, Cluster, FAST_FLAGS } from "./_cluster.ts";

const TOPIC = "retained";

/** A partition's offsets as one broker's replica reports them. */
interface LocalOffsets {
  isr: number[];
  logStartOffset: number | null;
  highWatermark: number | null;
  logEndOffset: number | null;
}

async function offsetsOn(cluster: Cluster, id: number): Promise<LocalOffsets> {
  const [p] = await cluster.describe(TOPIC, id);
  return p as unknown as LocalOffsets;
}

/** Bounded polling of one broker's own view (replica offsets have no cross-process event). */
async function waitOn(
  cluster: Cluster,
  id: number,
  cond: (o: LocalOffsets) => boolean,
  what: string,
): Promise<LocalOffsets> {
  const deadline = Date.now() + 15_000;
  let last: LocalOffsets | null = null;
  while (Date.now() < deadline) {
    try {
      last = await offsetsOn(cluster, id);
      if (cond(last)) return last;
    } catch {
      // starting up: ask again
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; last ${JSON.stringify(last)}`);
}

async function produce(url: string, value: string, acks: "1" | "all"): Promise<number> {
  const res = await fetch(`${url}/v1/topics/${TOPIC}/records?partition=0&acks=${acks}`, {
    method: "POST",
    headers: { "content-type": "application/vnd.rill.batch" },
    body: batchOf(value),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.baseOffset;
}

/** The log start and the raw batches of a stopped broker's replica, from `from` up to `upTo`. */
async function rawLog(cluster: Cluster, id: number, from: number, upTo: number) {
  const log = await PartitionLog.open(`${cluster.dir}/b${id}/${TOPIC}-0`);
  try {
    const parts: Uint8Array[] = [];
    let offset = from;
    for (let i = 0; i < 10_000 && offset < upTo; i++) {
      const r = await log.read(offset, 1 << 20, { maxOffset: upTo });
      if (r.bytes.length === 0) break;
      parts.push(r.bytes.slice());
      offset = r.nextOffset;
    }
    return { logStartOffset: log.logStartOffset, bytes: concat(parts) };
  } finally {
    await log.close();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

Deno.test("a follower whose log end is below the leader's log start restarts its log there, catches up and rejoins the ISR", async () => {
  await using cluster = await Cluster.start(2, [...FAST_FLAGS, "--retention-check-ms", "100"]);
  await cluster.explain(async () => {
    const [p0] = await cluster.createTopic(TOPIC, 1, 2, {
      "segment.bytes": "1024",
      "retention.bytes": "2048",
    });
    const leader = p0.leader;
    const follower = p0.replicas.find((id) => id !== leader)!;
    const leaderUrl = cluster.url(leader);
    await cluster.waitFor(TOPIC, (ps) => ps[0].isr.length === 2, "a full ISR");

    const pad = "x".repeat(120);
    for (let i = 0; i < 5; i++) await produce(leaderUrl, `before-${i}-${pad}`, "all");
    const followerEnd = 5;
    await waitOn(cluster, follower, (o) => o.logEndOffset === followerEnd, "the follower copy");
    await cluster.kill(follower);

    // With acks=1 the leader goes on alone; its retention deletes the follower's range.
    let next = followerEnd;
    for (let i = 0; i < 60; i++) next = (await produce(leaderUrl, `after-${i}-${pad}`, "1")) + 1;
    const gone = await waitOn(
      cluster,
      leader,
      (o) => (o.logStartOffset ?? 0) > followerEnd,
      "the leader's retention to pass the follower's log end",
    );
    assert.equal(gone.logEndOffset, next);
    await cluster.waitFor(
      TOPIC,
      (ps) => !ps[0].isr.includes(follower),
      `broker ${follower} out of the ISR`,
    );

    await cluster.startBroker(follower);
    await cluster.waitFor(
      TOPIC,
      (ps) => ps[0].isr.includes(follower),
      `broker ${follower} back in the ISR`,
    );
    const caughtUp = await waitOn(
      cluster,
      follower,
      (o) => o.logEndOffset === next,
      "the follower's log end to reach the leader's",
    );
    assert.ok(
      caughtUp.logStartOffset! > followerEnd,
      `the follower restarted past its old log end (log start ${caughtUp.logStartOffset})`,
    );
    const stderr = cluster.procs.get(follower)!.stderr();
    assert.match(stderr, /restarting retained-0 at the leader's log start offset \d+/);
    assert.equal((await offsetsOn(cluster, leader)).highWatermark, next);

    await cluster.stopAll();
    // Both apply retention on their own; compare from the later of the two log starts.
    const from = Math.max(
      (await rawLog(cluster, leader, 0, 0)).logStartOffset,
      (await rawLog(cluster, follower, 0, 0)).logStartOffset,
    );
    assert.ok(from < next, "retention left records to compare");
    const a = await rawLog(cluster, leader, from, next);
    const b = await rawLog(cluster, follower, from, next);
    assert.ok(a.bytes.length > 0, "the leader still holds records");
    assert.deepEqual(b.bytes, a.bytes, "the follower's log equals the leader's");
  });
});

Deno.test("--retention-check-ms sets how often brokers apply retention, and refuses a bad value", () => {
  assert.equal(
    parseReplicationArgs({ "retention-check-ms": "250" }).config.retentionCheckIntervalMs,
    250,
  );
  assert.equal(parseReplicationArgs({}).config.retentionCheckIntervalMs, undefined);
  for (const bad of ["0", "-5", "1s"]) {
    assert.throws(
      () => parseReplicationArgs({ "retention-check-ms": bad }),
      (e: unknown) => e instanceof UsageError && /--retention-check-ms/.test(e.message),
    );
  }
});
