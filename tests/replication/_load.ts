/**
 * A bounded acks=all load for cluster tests: one sequential producer per partition, each
 * attempt with a new value, recording what was acknowledged at which offset; and the check
 * that every acknowledged record is stored once, at its offset, on every replica.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Transport } from "../../src/client/transport.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { decodeBatch, splitBatches } from "../../src/protocol/record_batch.ts";
import { batchOf, type Cluster, type PartitionJson } from "./_cluster.ts";

/** A running load. */
export interface AckedLoad {
  /** per partition, the acknowledged values and offsets */
  acked: { value: string; offset: number }[][];
  /** per error code, how many attempts failed */
  errors: Map<string, number>;
  /** stops the producers (each finishes its request in flight) */
  stop(): Promise<void>;
  /** resolves once `n` more records were acknowledged (bounded) */
  progress(n: number): Promise<void>;
}

/**
 * Starts producing to every partition with acks=all.
 *
 * @param cluster the cluster
 * @param topic the topic
 * @param partitions how many partitions
 * @param pauseMs the pause between two records of one partition
 * @returns the load
 */
export function ackedLoad(
  cluster: Cluster,
  topic: string,
  partitions: number,
  pauseMs = 5,
): AckedLoad {
  const transport = new Transport({ brokers: cluster.urls(), retry: { retries: 0 } });
  const acked: { value: string; offset: number }[][] = [...Array(partitions)].map(() => []);
  const errors = new Map<string, number>();
  let stopped = false;
  const total = () => acked.reduce((n, a) => n + a.length, 0);
  const loops = [...Array(partitions).keys()].map(async (p) => {
    for (let n = 0; !stopped && n < 1_000_000; n++) {
      const value = `p${p}-${n}`;
      try {
        const res = await transport.request("POST", `/v1/topics/${topic}/records`, {
          query: { partition: p, acks: "all" },
          headers: { "Content-Type": "application/vnd.rill.batch" },
          body: batchOf(value),
          signal: AbortSignal.timeout(10_000),
        });
        const body = await res.json();
        acked[p].push({ value, offset: body.baseOffset });
      } catch (e) {
        const code = e instanceof RillError ? e.code : String(e).slice(0, 40);
        errors.set(code, (errors.get(code) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 20));
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    acked,
    errors,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
    async progress(n: number) {
      const target = total() + n;
      const deadline = Date.now() + 20_000;
      while (total() < target && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(total() >= target, `the load kept going (errors: ${[...errors]})`);
    },
  };
}

/**
 * After the load stopped: every acknowledged record is stored once, at its offset, on
 * every replica of its partition (logs read from the stopped brokers' directories), and
 * the replicas are byte-identical up to the high watermark.
 *
 * @param cluster the cluster (its brokers are stopped here)
 * @param topic the topic
 * @param load the stopped load
 */
export async function assertNoLoss(
  cluster: Cluster,
  topic: string,
  load: AckedLoad,
): Promise<void> {
  const final = await cluster.describe(topic);
  const hws: number[] = [];
  for (const p of final) {
    const d = (await cluster.describe(topic, p.leader))[p.partition];
    hws.push(d.highWatermark!);
  }
  await cluster.stopAll();
  for (const p of final) {
    const acked = load.acked[p.partition];
    assert.ok(acked.length > 0, `partition ${p.partition} got acknowledgements`);
    const logs = await Promise.all(
      p.replicas.map((id) => cluster.readLog(id, topic, p.partition, hws[p.partition])),
    );
    for (const log of logs.slice(1)) {
      assert.deepEqual(log, logs[0], `partition ${p.partition}: replicas differ`);
    }
    const values = new Map<string, number>();
    for (const batch of splitBatches(logs[0])) {
      const d = decodeBatch(batch);
      d.records.forEach((r, i) => {
        const v = new TextDecoder().decode(r.value!);
        if (!/^p\d+-\d+$/.test(v)) return; // not the load's
        assert.equal(values.has(v), false, `${v} is stored twice`);
        values.set(v, d.header.baseOffset + i);
      });
    }
    for (const a of acked) {
      assert.equal(
        values.get(a.value),
        a.offset,
        `acknowledged ${a.value} at ${a.offset} is missing`,
      );
    }
  }
}

/**
 * For a failure message: each listed partition's leader, epoch, replicas and ISR, and each
 * replica's log end offset and high watermark as its own broker reports them.
 *
 * @param cluster the cluster
 * @param topic the topic
 * @param lines a line per partition (what the consumer saw), in the order of `partitions`
 * @param partitions the partitions
 * @param brokers the brokers to ask
 * @returns the text
 */
export async function deliveryReport(
  cluster: Cluster,
  topic: string,
  lines: string[],
  partitions: number[],
  brokers: number[],
): Promise<string> {
  const out: string[] = [];
  const meta = await cluster.describe(topic).catch(() => null);
  const local = new Map<number, PartitionJson[] | null>();
  for (const id of brokers) local.set(id, await cluster.describe(topic, id).catch(() => null));
  partitions.forEach((p, i) => {
    const m = meta?.[p];
    out.push(
      `${
        lines[i]
      }; leader ${m?.leader} epoch ${m?.leaderEpoch} replicas ${m?.replicas} isr ${m?.isr}`,
    );
    for (const [id, parts] of local) {
      const d = parts?.[p];
      if (d?.highWatermark == null) continue;
      out.push(`  broker ${id}: log end ${d.logEndOffset} high watermark ${d.highWatermark}`);
    }
  });
  return out.join("\n");
}
