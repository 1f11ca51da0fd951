/**
 * Rebalance benchmark (issue 20): broker processes on loopback sharing one KV file.
 *
 * - re-replication: a 3-broker cluster (replication factor 2, 6 partitions) holding
 *   `RILL_BENCH_REBALANCE_MB` (default 256) MB; one broker is SIGKILLed for good
 *   (`--replica-replacement-delay-ms 1000`); the time from the kill until every partition
 *   is back to 2 in-sync replicas on live brokers, and the rate at which the dead broker's
 *   bytes were rebuilt (its bytes / time from the first move's start to the last one's
 *   end), with the throttle
 *   off, at `RILL_BENCH_THROTTLE_MBPS` (default 50) MB/s per receiving broker, and at
 *   `RILL_BENCH_THROTTLE_LOW_MBPS` (default 8, below this machine's copy rate, so that the
 *   throttle binds). Baseline measured in the same
 *   run: copying the same partition directories with `Deno.copyFile` (the disk's floor
 *   for moving those bytes), as a ratio;
 * - produce p99 before, during and after a rebalance: acks=all 1 KiB records, one request
 *   at a time per partition (6 partitions), on 3 brokers; a 4th broker joins and
 *   `rebalance --execute` moves replicas onto it under the throttle; the p99 of each phase
 *   and the during / before ratio (target ≤ 3).
 *
 * @module
 */
import type { Reporter } from "./_report.ts";
import { encodeBatch } from "../src/protocol/record_batch.ts";
import { type BrokerProcess, startBroker } from "../tests/_helpers/broker_process.ts";

const SUITE = "rebalance";
const MB = Number(Deno.env.get("RILL_BENCH_REBALANCE_MB") ?? "256");
const THROTTLE_MBPS = Number(Deno.env.get("RILL_BENCH_THROTTLE_MBPS") ?? "50");
/** a throttle below this machine's copy rate, to show it binds */
const THROTTLE_LOW_MBPS = Number(Deno.env.get("RILL_BENCH_THROTTLE_LOW_MBPS") ?? "8");
const PHASE_SECONDS = Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3");
const PARTITIONS = 6;
const SESSION_MS = 1200;
const DELAY_MS = 1000;

interface PartitionJson {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
  targetReplicas?: number[];
}

class Nodes {
  readonly procs = new Map<number, BrokerProcess>();
  constructor(readonly dir: string, readonly flags: string[]) {}
  async start(id: number): Promise<void> {
    this.procs.set(
      id,
      await startBroker({
        id,
        kvPath: `${this.dir}/meta.kv`,
        dataDir: `${this.dir}/b${id}`,
        extraArgs: this.flags,
      }),
    );
  }
  url(id: number): string {
    return this.procs.get(id)!.url;
  }
  any(): string {
    return [...this.procs.values()][0].url;
  }
  async describe(topic: string): Promise<PartitionJson[]> {
    const res = await fetch(`${this.any()}/v1/topics/${topic}`);
    return (await res.json()).partitions;
  }
  async waitFor(topic: string, cond: (ps: PartitionJson[]) => boolean, ms = 600_000) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      try {
        if (cond(await this.describe(topic))) return;
      } catch {
        // retry
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting on ${topic}`);
  }
  async kill(id: number): Promise<void> {
    const p = this.procs.get(id)!;
    p.kill("SIGKILL");
    await p.exited;
    this.procs.delete(id);
  }
  async close(): Promise<void> {
    for (const id of [...this.procs.keys()]) await this.kill(id);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

async function createTopic(n: Nodes, name: string, partitions: number, rf: number) {
  const res = await fetch(`${n.any()}/v1/topics`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, partitions, replicationFactor: rf }),
  });
  if (res.status !== 201) throw new Error(await res.text());
  await n.waitFor(name, (ps) => ps.every((p) => p.isr.length === rf));
}

/** Writes `mb` MB of 1 KiB records spread over the partitions (256 KiB batches, acks=all). */
async function fill(n: Nodes, topic: string, mb: number): Promise<void> {
  const value = new Uint8Array(1000);
  for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
  const batch = encodeBatch(Array.from({ length: 250 }, () => ({ key: null, value })));
  const perPartition = Math.ceil(mb * 1024 * 1024 / batch.length / PARTITIONS);
  const ps = await n.describe(topic);
  await Promise.all(ps.map(async (p) => {
    for (let i = 0; i < perPartition; i++) {
      const res = await fetch(
        `${n.url(p.leader)}/v1/topics/${topic}/records?partition=${p.partition}&acks=all`,
        {
          method: "POST",
          headers: { "content-type": "application/vnd.rill.batch" },
          body: batch.slice(),
        },
      );
      if (!res.ok) throw new Error(await res.text());
      await res.body?.cancel();
    }
  }));
}

async function dirBytes(path: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(path)) {
    const full = `${path}/${e.name}`;
    if (e.isDirectory) total += await dirBytes(full);
    else if (e.isFile) total += (await Deno.stat(full)).size;
  }
  return total;
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** One re-replication round; returns seconds from the kill to full replication, and MB. */
async function rereplicate(
  throttleMBps: number,
): Promise<{ seconds: number; copySeconds: number; mb: number; floorSeconds: number }> {
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-rebalance-" });
  const n = new Nodes(dir, [
    "--session-timeout-ms",
    String(SESSION_MS),
    "--replica-lag-time-max-ms",
    "3000",
    "--metadata-poll-ms",
    "100",
    "--replica-replacement-delay-ms",
    String(DELAY_MS),
    "--max-concurrent-moves",
    String(PARTITIONS),
    "--replication-throttle-bytes",
    String(Math.round(throttleMBps * 1024 * 1024)),
  ]);
  try {
    for (const id of [1, 2, 3]) await n.start(id);
    await createTopic(n, "data", PARTITIONS, 2);
    await fill(n, "data", MB);
    const victim = 3;
    const ps = await n.describe("data");
    const hosted = ps.filter((p) => p.replicas.includes(victim));
    await n.waitFor("data", (x) => x.every((p) => p.isr.length === 2));
    let bytes = 0;
    for (const p of hosted) bytes += await dirBytes(`${dir}/b${victim}/data-${p.partition}`);
    // the floor: copying the same directories on this disk
    const floorStart = performance.now();
    for (const p of hosted) {
      await copyDir(`${dir}/b${victim}/data-${p.partition}`, `${dir}/floor/data-${p.partition}`);
    }
    const floorSeconds = (performance.now() - floorStart) / 1000;
    await Deno.remove(`${dir}/floor`, { recursive: true });
    const start = performance.now();
    await n.kill(victim);
    let firstMove = 0;
    await n.waitFor("data", (x) => {
      if (firstMove === 0 && x.some((p) => p.targetReplicas)) firstMove = performance.now();
      return x.every((p) =>
        !p.targetReplicas && p.replicas.length === 2 && !p.replicas.includes(victim) &&
        p.isr.length === 2
      );
    }, 600_000);
    const end = performance.now();
    return {
      seconds: (end - start) / 1000,
      copySeconds: (end - (firstMove || start)) / 1000,
      mb: bytes / 1024 / 1024,
      floorSeconds,
    };
  } finally {
    await n.close();
  }
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
}

async function produceLatencies(n: Nodes, topic: string, until: () => boolean): Promise<number[]> {
  const value = new Uint8Array(1000);
  const batch = encodeBatch([{ key: null, value }]);
  const lat: number[] = [];
  const ps = await n.describe(topic);
  await Promise.all(ps.map(async (p) => {
    for (let i = 0; i < 1_000_000 && !until(); i++) {
      const leader = (await n.describe(topic))[p.partition].leader;
      const t = performance.now();
      const res = await fetch(
        `${n.url(leader)}/v1/topics/${topic}/records?partition=${p.partition}&acks=all`,
        {
          method: "POST",
          headers: { "content-type": "application/vnd.rill.batch" },
          body: batch.slice(),
        },
      );
      await res.body?.cancel();
      if (res.ok) lat.push(performance.now() - t);
    }
  }));
  return lat;
}

async function rebalanceLatency(report: Reporter): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-rebalance-" });
  const n = new Nodes(dir, [
    "--session-timeout-ms",
    String(SESSION_MS),
    "--metadata-poll-ms",
    "100",
    "--replication-throttle-bytes",
    String(Math.round(THROTTLE_MBPS * 1024 * 1024)),
  ]);
  try {
    for (const id of [1, 2, 3]) await n.start(id);
    await createTopic(n, "data", PARTITIONS, 2);
    await fill(n, "data", Math.max(16, MB / 4));
    await createTopic(n, "live", PARTITIONS, 2);
    const phase = async (ms: number) => {
      const end = Date.now() + ms;
      return await produceLatencies(n, "live", () => Date.now() > end);
    };
    const before = await phase(PHASE_SECONDS * 1000);
    await n.start(4);
    // sizes reach KV with the leaders' heartbeats
    await new Promise((r) => setTimeout(r, 2500));
    let settled = false;
    const during = produceLatencies(n, "live", () => settled);
    const plan = await (await fetch(`${n.any()}/v1/cluster/rebalance`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ execute: true }),
    })).json();
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) {
      const s = await (await fetch(`${n.any()}/v1/cluster/status`)).json();
      if (s.moving.length === 0 && s.pending === 0 && s.underReplicated === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const moveSeconds = (performance.now() - started) / 1000;
    settled = true;
    const duringLat = await during;
    const after = await phase(PHASE_SECONDS * 1000);
    const b = p99(before), d = p99(duringLat), a = p99(after);
    report({ suite: SUITE, name: "produce p99 before the rebalance", value: b, unit: "ms" });
    report({
      suite: SUITE,
      name: `produce p99 during the rebalance (${plan.moves.length} moves, ${
        moveSeconds.toFixed(1)
      } s, throttle ${THROTTLE_MBPS} MB/s)`,
      value: d,
      unit: "ms",
      ratio: d / b,
      baseline: "p99 before",
      target: "<= 3x",
      met: d / b <= 3,
    });
    report({
      suite: SUITE,
      name: "produce p99 after the rebalance",
      value: a,
      unit: "ms",
      ratio: a / b,
      baseline: "p99 before",
    });
  } finally {
    await n.close();
  }
}

/**
 * Runs the suite.
 *
 * @param report receives the figures
 */
export async function run(report: Reporter): Promise<void> {
  for (const throttle of [0, THROTTLE_MBPS, THROTTLE_LOW_MBPS]) {
    const r = await rereplicate(throttle);
    const copySeconds = Math.max(0.001, r.copySeconds);
    const label = throttle === 0 ? "throttle off" : `throttle ${throttle} MB/s per broker`;
    report({
      suite: SUITE,
      name: `re-replication of ${r.mb.toFixed(0)} MB after a broker's loss, ${label}`,
      value: r.seconds,
      unit: "s",
      target: `includes ${SESSION_MS / 1000} s session timeout + ${DELAY_MS / 1000} s delay`,
    });
    report({
      suite: SUITE,
      name: `re-replication rate, ${label}`,
      value: r.mb / copySeconds,
      unit: "MB/s",
      ratio: (r.mb / copySeconds) / (r.mb / r.floorSeconds),
      baseline: "Deno.copyFile of the same directories",
      ...(throttle > 0
        ? {
          target: `<= ${2 * throttle} MB/s (2 receiving brokers)`,
          met: r.mb / copySeconds <= 2 * throttle * 1.1,
        }
        : {}),
    });
  }
  await rebalanceLatency(report);
}
