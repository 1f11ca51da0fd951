/**
 * Replication benchmark: broker processes on loopback sharing one KV file.
 *
 * - produce 1 KiB records (256 KiB batches, `RILL_BENCH_IN_FLIGHT` (default 5, Kafka's
 *   `max.in.flight.requests.per.connection`) requests in flight per partition, 3
 *   partitions) with acks=all to a 3-broker cluster with replication factor 3 (two such
 *   clusters: followers in fetch sessions, the default, and followers polling each partition,
 *   `--replica-fetch partition`, as before issue 17), against
 *   acks=1 on one broker with replication factor 1, measured in the same run
 *   (target ≥ 0.5 of the baseline): both clusters stay up and the two phases alternate
 *   for `RILL_BENCH_ROUNDS` (default 3) rounds after an uncounted one; the ratio is the
 *   median of the per-round ratios. Every phase uses the same client, record size, batch
 *   size and in-flight count, starts after a quiet interval (dirty pages synced, then
 *   `RILL_BENCH_QUIET_MS`, default 1000, idle) and a warm-up of
 *   `RILL_BENCH_WARMUP_SECONDS` (default 1) that is not counted. Diagnostics: the CPU time
 *   of the client and the brokers per MB produced (from /proc), the CPU other processes
 *   used meanwhile (a busy machine makes the figures meaningless), and acks=1 on the same
 *   cluster;
 * - the many-partition case: a `RILL_BENCH_MANY_PARTITIONS`-partition (default 12) topic
 *   with replication factor 3 on the same two clusters (each leader leads a third of them,
 *   so each follower copies several partitions from each leader), acks=all, with the same
 *   requests in flight in all (spread over the partitions), against the same topic with
 *   replication factor 1 on the single broker, in the same interleaved rounds: sessions
 *   against per-partition polls, where a session has partitions to combine;
 * - the floor (bench/_replication_floor.ts; `RILL_BENCH_REPLICATION_FLOOR=0` skips it): the
 *   same two phases, interleaved with Rill's, against bare Deno processes that only append
 *   to files and pull each other's bytes over HTTP, with no Rill code: the RF 3 / RF 1
 *   ratio and CPU per MB that such a pipeline gets on this machine;
 * - failover: SIGKILL the leader of a partition while a client produces with acks=all;
 *   the time until the first acknowledged produce on the new leader, default timeouts
 *   (session 6 s, metadata poll 1 s); median of `RILL_BENCH_FAILOVER_ROUNDS` (default 3)
 *   rounds (target ≤ 8 s);
 * - catch-up: a follower that was down while `RILL_BENCH_CATCHUP_MB` (default 256) MB
 *   were written restarts; the rate at which it copies them (MB/s, from its ready line to
 *   its log end offset reaching the leader's).
 *
 * `RILL_BENCH_SECONDS` (default 3) sets the length of each throughput phase;
 * `RILL_BENCH_REPLICATION_THROUGHPUT_ONLY=1` skips failover and catch-up.
 *
 * @module
 */
import { interleaved, logRounds, median, pairedRatio, type Reporter } from "./_report.ts";
import { type FloorCluster, startFloorCluster } from "./_replication_floor.ts";
import { encodeBatch } from "../src/protocol/record_batch.ts";
import { type BrokerProcess, startBroker } from "../tests/_helpers/broker_process.ts";

const SUITE = "replication";
const SECONDS = Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3");
const FAILOVER_ROUNDS = Number(Deno.env.get("RILL_BENCH_FAILOVER_ROUNDS") ?? "3");
const CATCHUP_MB = Number(Deno.env.get("RILL_BENCH_CATCHUP_MB") ?? "256");
const PARTITIONS = 3;
/**
 * The many-partition case (`RILL_BENCH_MANY_PARTITIONS`, default 12; 0 skips it): a second
 * topic on the same clusters, so that each follower copies several partitions from each
 * leader and a fetch session has something to combine.
 */
const MANY = Math.max(0, Number(Deno.env.get("RILL_BENCH_MANY_PARTITIONS") ?? "12") || 0);
const IN_FLIGHT = Number(Deno.env.get("RILL_BENCH_IN_FLIGHT") ?? "5");
const WARMUP_SECONDS = Number(Deno.env.get("RILL_BENCH_WARMUP_SECONDS") ?? "1");
const QUIET_MS = Number(Deno.env.get("RILL_BENCH_QUIET_MS") ?? "1000");
const ROUNDS = Math.max(1, Number(Deno.env.get("RILL_BENCH_ROUNDS") ?? "3") || 3);
const FLOOR = Deno.env.get("RILL_BENCH_REPLICATION_FLOOR") !== "0";
/** followers that poll each partition (`--replica-fetch partition`, before issue 17) */
const PER_PARTITION_FLAGS = ["--replica-fetch", "partition"];
/**
 * `RILL_BENCH_REPLICA_FETCH=partition`: the failover and catch-up clusters' followers poll
 * each partition (the throughput phases measure both shapes in every run).
 */
const REPLICA_FETCH_FLAGS = Deno.env.get("RILL_BENCH_REPLICA_FETCH") === "partition"
  ? PER_PARTITION_FLAGS
  : [];
const BATCH_BYTES = 256 * 1024;
/** USER_HZ, the unit of /proc CPU times (100 on Linux). */
const CLOCK_TICKS = 100;

function batchOf(recordSize: number): { batch: Uint8Array<ArrayBuffer>; records: number } {
  const value = new Uint8Array(recordSize);
  for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
  const count = Math.floor(BATCH_BYTES / (recordSize + 8));
  const batch = encodeBatch(Array.from({ length: count }, () => ({ key: null, value })));
  return { batch: batch as Uint8Array<ArrayBuffer>, records: count };
}

interface PartitionJson {
  partition: number;
  leader: number;
  isr: number[];
  highWatermark: number | null;
  logEndOffset: number | null;
}

class Nodes {
  readonly procs = new Map<number, BrokerProcess>();
  readonly ports = new Map<number, number>();
  constructor(readonly dir: string, readonly flags: string[] = REPLICA_FETCH_FLAGS) {}

  async start(id: number): Promise<void> {
    const port = this.ports.get(id);
    const p = await startBroker({
      id,
      kvPath: `${this.dir}/meta.kv`,
      dataDir: `${this.dir}/b${id}`,
      extraArgs: [...this.flags, ...(port ? ["--listen", `127.0.0.1:${port}`] : [])],
    });
    this.ports.set(id, Number(new URL(p.url).port));
    this.procs.set(id, p);
  }

  url(id: number): string {
    return `http://127.0.0.1:${this.ports.get(id)}`;
  }

  async kill(id: number): Promise<void> {
    const p = this.procs.get(id)!;
    p.kill("SIGKILL");
    await p.exited;
    this.procs.delete(id);
  }

  async describe(topic: string, via?: number): Promise<PartitionJson[] | null> {
    for (const id of via !== undefined ? [via] : [...this.procs.keys()]) {
      try {
        const res = await fetch(`${this.url(id)}/v1/topics/${topic}`);
        const body = await res.json();
        if (res.ok) return body.partitions;
      } catch {
        // try the next
      }
    }
    return null;
  }

  async until(
    topic: string,
    cond: (ps: PartitionJson[]) => boolean,
    timeoutMs = 60_000,
    via?: number,
  ): Promise<PartitionJson[]> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ps = await this.describe(topic, via);
      if (ps && cond(ps)) return ps;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out waiting on ${topic}`);
  }

  async create(name: string, partitions: number, rf: number, configs = {}): Promise<void> {
    const res = await fetch(`${this.url([...this.procs.keys()][0])}/v1/topics`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name, partitions, replicationFactor: rf, configs }),
    });
    if (res.status !== 201) throw new Error(`create: ${await res.text()}`);
    await res.body?.cancel();
  }

  async dispose(): Promise<void> {
    for (const p of this.procs.values()) {
      p.kill("SIGKILL");
      await p.exited;
    }
    this.procs.clear();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Writes dirty pages out before a timed phase, so that one phase does not pay for the
 * writeback of the previous one (the RF 3 phase writes three times the bytes).
 */
async function settleDisk(): Promise<void> {
  try {
    await new Deno.Command("sync").output();
  } catch {
    // no sync(1) here: the phases just share the writeback
  }
}

/**
 * The quiet interval before a timed phase: dirty pages written out, then an idle pause so
 * that the previous phase's background work (writeback, segment fsyncs, follower catch-up,
 * garbage collection) does not land in the next one.
 */
async function quiet(): Promise<void> {
  await settleDisk();
  await new Promise((r) => setTimeout(r, QUIET_MS));
}

/** One timed phase: rate, and what it cost the machine. */
interface Phase {
  /** records per second */
  rate: number;
  /** MB (1e6 bytes of record values) per second */
  mbps: number;
  /** CPU time of the client and the cluster's processes per MB produced, ms */
  cpuMsPerMb: number;
  /** CPU (cores) used meanwhile by everything else on the machine (kernel threads included) */
  otherCores: number;
}

/** CPU seconds (user + system) a process has used, from /proc; 0 where there is none. */
function cpuSeconds(pid: number | "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat (0 elsewhere). */
function machineSeconds(): { busy: number } {
  try {
    const cpu = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/)
      .slice(1, 9).map(Number);
    const total = cpu.reduce((a, b) => a + b, 0);
    return { busy: (total - cpu[3] - cpu[4]) / CLOCK_TICKS };
  } catch {
    return { busy: 0 };
  }
}

/**
 * Produces for a warm-up (not counted), then for `SECONDS`, with `IN_FLIGHT` requests in
 * flight per partition, after a quiet interval; measures the CPU of the client (this
 * process) and of `pids` meanwhile.
 */
async function produceRate(
  target: (p: number) => string,
  pids: readonly number[],
  partitions = PARTITIONS,
): Promise<Phase> {
  await quiet();
  if (WARMUP_SECONDS > 0) await produceFor(target, WARMUP_SECONDS, partitions);
  const procs0 = pids.reduce((a, pid) => a + cpuSeconds(pid), cpuSeconds("self"));
  const m0 = machineSeconds();
  const r = await produceFor(target, SECONDS, partitions);
  const procs = pids.reduce((a, pid) => a + cpuSeconds(pid), cpuSeconds("self")) - procs0;
  const m1 = machineSeconds();
  const cores = (m1.busy - m0.busy) / r.seconds;
  const mb = r.mbps * r.seconds;
  return {
    rate: r.rate,
    mbps: r.mbps,
    cpuMsPerMb: mb > 0 ? procs * 1000 / mb : 0,
    otherCores: Math.max(0, cores - procs / r.seconds),
  };
}

async function produceFor(
  target: (p: number) => string,
  seconds: number,
  partitions = PARTITIONS,
): Promise<{ rate: number; mbps: number; seconds: number }> {
  const { batch, records } = batchOf(1024);
  let n = 0;
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    // The same requests in flight whatever the partition count (spread over the partitions).
    Array.from({ length: Math.max(PARTITIONS * IN_FLIGHT, partitions) }, async (_, i) => {
      const p = i % partitions;
      while (performance.now() < end) {
        const res = await fetch(target(p), {
          method: "POST",
          headers: { "content-type": "application/vnd.rill.batch" },
          body: batch,
        });
        await res.arrayBuffer();
        if (res.ok) n += records;
        else if (++errors > 100) throw new Error(`produce failed: HTTP ${res.status}`);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { rate: n / secs, mbps: (n * 1024) / secs / 1e6, seconds: secs };
}

function rillTarget(urlOf: (p: number) => string, acks: string): (p: number) => string {
  return rillTopicTarget("bench", urlOf, acks);
}

function rillTopicTarget(
  topic: string,
  urlOf: (p: number) => string,
  acks: string,
): (p: number) => string {
  return (p) => `${urlOf(p)}/v1/topics/${topic}/records?partition=${p}&acks=${acks}`;
}

async function throughput(report: Reporter): Promise<void> {
  const single = new Nodes(await Deno.makeTempDir({ prefix: "rill-bench-rf1-" }));
  const three = new Nodes(await Deno.makeTempDir({ prefix: "rill-bench-rf3-" }), []);
  const threeP = new Nodes(
    await Deno.makeTempDir({ prefix: "rill-bench-rf3p-" }),
    PER_PARTITION_FLAGS,
  );
  const floors: FloorCluster[] = [];
  try {
    await single.start(1);
    await single.create("bench", PARTITIONS, 1);
    for (const id of [1, 2, 3]) await three.start(id);
    await three.create("bench", PARTITIONS, 3, { "min.insync.replicas": "2" });
    const ps = await three.until("bench", (ps) => ps.every((p) => p.isr.length === 3));
    for (const id of [1, 2, 3]) await threeP.start(id);
    await threeP.create("bench", PARTITIONS, 3, { "min.insync.replicas": "2" });
    const psP = await threeP.until("bench", (ps) => ps.every((p) => p.isr.length === 3));
    let psM: PartitionJson[] = [];
    let psMP: PartitionJson[] = [];
    if (MANY > 0) {
      await single.create("many", MANY, 1);
      await three.create("many", MANY, 3, { "min.insync.replicas": "2" });
      psM = await three.until("many", (ps) => ps.every((p) => p.isr.length === 3));
      await threeP.create("many", MANY, 3, { "min.insync.replicas": "2" });
      psMP = await threeP.until("many", (ps) => ps.every((p) => p.isr.length === 3));
    }
    const rf1Pids = [...single.procs.values()].map((p) => p.pid);
    const rf3Pids = [...three.procs.values()].map((p) => p.pid);
    const rf3pPids = [...threeP.procs.values()].map((p) => p.pid);
    const phases: Record<string, () => Promise<Phase>> = {
      rf1: () => produceRate(rillTarget(() => single.url(1), "1"), rf1Pids),
      rf3: () => produceRate(rillTarget((p) => three.url(ps[p].leader), "all"), rf3Pids),
      rf3p: () => produceRate(rillTarget((p) => threeP.url(psP[p].leader), "all"), rf3pPids),
    };
    if (MANY > 0) {
      phases.rf1m = () =>
        produceRate(rillTopicTarget("many", () => single.url(1), "1"), rf1Pids, MANY);
      phases.rf3m = () =>
        produceRate(
          rillTopicTarget("many", (p) => three.url(psM[p].leader), "all"),
          rf3Pids,
          MANY,
        );
      phases.rf3pm = () =>
        produceRate(
          rillTopicTarget("many", (p) => threeP.url(psMP[p].leader), "all"),
          rf3pPids,
          MANY,
        );
    }
    if (FLOOR) {
      const f1 = await startFloorCluster(1);
      floors.push(f1);
      const f3 = await startFloorCluster(3);
      floors.push(f3);
      phases.floor1 = () => produceRate((p) => f1.produceUrl(p, "1"), f1.pids);
      phases.floor3 = () => produceRate((p) => f3.produceUrl(p, "all"), f3.pids);
    }
    const seen: Record<string, Phase[]> = {};
    const rates = await interleaved(
      ROUNDS,
      Object.fromEntries(
        Object.entries(phases).map(([name, phase]) => [name, async (round: number) => {
          const r = await phase();
          if (round >= 0) (seen[name] ??= []).push(r);
          return r.rate;
        }]),
      ),
    );
    logRounds(SUITE, rates);
    const med = (name: string, key: keyof Phase) => median(seen[name].map((r) => r[key]));
    const ratio = pairedRatio(rates.rf3, rates.rf1);
    report({
      suite: SUITE,
      name: "produce 1 KiB, RF 1, acks=1, 1 broker",
      value: median(rates.rf1),
      unit: "records/s",
    });
    report({
      suite: SUITE,
      name: "produce 1 KiB, RF 3, acks=all, 3 brokers, follower fetch sessions",
      value: median(rates.rf3),
      unit: "records/s",
      ratio,
      baseline: `RF 1 acks=1 (median of ${ROUNDS} paired rounds)`,
      target: ">= 0.5",
      met: ratio >= 0.5,
    });
    report({
      suite: SUITE,
      name: "produce 1 KiB, RF 3, acks=all, 3 brokers, followers poll each partition",
      value: median(rates.rf3p),
      unit: "records/s",
      ratio: pairedRatio(rates.rf3p, rates.rf1),
      baseline: `RF 1 acks=1 (median of ${ROUNDS} paired rounds)`,
    });
    report({
      suite: SUITE,
      name: "RF 3 acks=all: follower fetch sessions against per-partition polls",
      value: pairedRatio(rates.rf3, rates.rf3p),
      unit: "x",
    });
    report({
      suite: SUITE,
      name: "produce 1 KiB, RF 3, acks=all (bytes)",
      value: med("rf3", "mbps"),
      unit: "MB/s",
    });
    for (
      const [name, label] of [
        ["rf1", "RF 1 acks=1"],
        ["rf3", "RF 3 acks=all, sessions"],
        ["rf3p", "RF 3 acks=all, per-partition"],
      ]
    ) {
      report({
        suite: SUITE,
        name: `CPU per MB produced, ${label} (client + brokers, diagnostic)`,
        value: med(name, "cpuMsPerMb"),
        unit: "ms/MB",
      });
    }
    if (MANY > 0) {
      const label = `${MANY} partitions`;
      report({
        suite: SUITE,
        name: `produce 1 KiB, ${label}, RF 3, acks=all, 3 brokers, follower fetch sessions`,
        value: median(rates.rf3m),
        unit: "records/s",
        ratio: pairedRatio(rates.rf3m, rates.rf1m),
        baseline: `RF 1 acks=1, ${label} (median of ${ROUNDS} paired rounds)`,
      });
      report({
        suite: SUITE,
        name: `produce 1 KiB, ${label}, RF 3, acks=all, 3 brokers, followers poll each partition`,
        value: median(rates.rf3pm),
        unit: "records/s",
        ratio: pairedRatio(rates.rf3pm, rates.rf1m),
        baseline: `RF 1 acks=1, ${label} (median of ${ROUNDS} paired rounds)`,
      });
      report({
        suite: SUITE,
        name: `RF 3 acks=all, ${label}: follower fetch sessions against per-partition polls`,
        value: pairedRatio(rates.rf3m, rates.rf3pm),
        unit: "x",
      });
      for (
        const [name, l] of [
          ["rf1m", "RF 1 acks=1"],
          ["rf3m", "RF 3 acks=all, sessions"],
          ["rf3pm", "RF 3 acks=all, per-partition"],
        ]
      ) {
        report({
          suite: SUITE,
          name: `CPU per MB produced, ${label}, ${l} (client + brokers, diagnostic)`,
          value: med(name, "cpuMsPerMb"),
          unit: "ms/MB",
        });
      }
    }
    if (FLOOR) {
      const floorRatio = pairedRatio(rates.floor3, rates.floor1);
      report({
        suite: SUITE,
        name: "floor: RF 3 acks=all without Rill (Deno.serve + files + HTTP pull, diagnostic)",
        value: median(rates.floor3),
        unit: "records/s",
        ratio: floorRatio,
        baseline: "floor RF 1 acks=1",
      });
      for (const [name, label] of [["floor1", "RF 1"], ["floor3", "RF 3 acks=all"]]) {
        report({
          suite: SUITE,
          name: `floor: CPU per MB produced, ${label} (diagnostic)`,
          value: med(name, "cpuMsPerMb"),
          unit: "ms/MB",
        });
      }
    }
    report({
      suite: SUITE,
      name: "CPU used by other processes during the timed phases (median, diagnostic)",
      value: median(Object.values(seen).flat().map((r) => r.otherCores)),
      unit: "cores",
    });
    // Diagnostic: the same cluster with acks=1 shows what replicating costs the machine
    // (followers copy as fast as they can either way) apart from waiting for the ISR.
    const one = await produceRate(rillTarget((p) => three.url(ps[p].leader), "1"), rf3Pids);
    report({
      suite: SUITE,
      name: "produce 1 KiB, RF 3, acks=1, 3 brokers (diagnostic)",
      value: one.rate,
      unit: "records/s",
      ratio: one.rate / median(rates.rf1),
      baseline: "RF 1 acks=1",
    });
  } finally {
    for (const f of floors) await f[Symbol.asyncDispose]();
    await threeP.dispose();
    await three.dispose();
    await single.dispose();
  }
}

async function failoverAndCatchUp(report: Reporter): Promise<void> {
  const nodes = new Nodes(await Deno.makeTempDir({ prefix: "rill-bench-failover-" }));
  try {
    for (const id of [1, 2, 3]) await nodes.start(id);
    await nodes.create("fo", 1, 3, { "min.insync.replicas": "2" });
    await nodes.until("fo", (ps) => ps[0].isr.length === 3);
    const one = new TextEncoder().encode("x".repeat(1024));
    const body = encodeBatch([{ value: one }]) as Uint8Array<ArrayBuffer>;
    const times: number[] = [];
    for (let round = 0; round < FAILOVER_ROUNDS; round++) {
      const victim = (await nodes.describe("fo"))![0].leader;
      const t0 = performance.now();
      await nodes.kill(victim);
      let ms = -1;
      for (let i = 0; i < 100_000 && ms < 0; i++) {
        const ps = await nodes.describe("fo");
        const leader = ps?.[0].leader ?? -1;
        if (leader >= 0 && leader !== victim) {
          try {
            const res = await fetch(
              `${nodes.url(leader)}/v1/topics/fo/records?partition=0&acks=all`,
              {
                method: "POST",
                headers: { "content-type": "application/vnd.rill.batch" },
                body,
              },
            );
            await res.arrayBuffer();
            if (res.ok) ms = performance.now() - t0;
          } catch {
            // not up yet
          }
        }
        if (ms < 0) await new Promise((r) => setTimeout(r, 10));
        if (performance.now() - t0 > 60_000) throw new Error("no new leader within 60 s");
      }
      times.push(ms);
      await nodes.start(victim);
      await nodes.until("fo", (ps) => ps[0].isr.length === 3);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    report({
      suite: SUITE,
      name:
        `failover: SIGKILL of the leader to the first acks=all on the new one (median of ${times.length})`,
      value: median,
      unit: "ms",
      target: "<= 8000",
      met: median <= 8000,
    });

    // Catch-up: a follower down while CATCHUP_MB are written.
    await nodes.create("cu", 1, 3, { "min.insync.replicas": "1" });
    const ps = await nodes.until("cu", (ps) => ps[0].isr.length === 3);
    const leader = ps[0].leader;
    const follower = [1, 2, 3].find((id) => id !== leader && nodes.procs.has(id))!;
    await nodes.kill(follower);
    const { batch, records } = batchOf(1024);
    const batches = Math.ceil((CATCHUP_MB * 1e6) / batch.length);
    let written = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (written < batches) {
        written++;
        const res = await fetch(`${nodes.url(leader)}/v1/topics/cu/records?partition=0&acks=1`, {
          method: "POST",
          headers: { "content-type": "application/vnd.rill.batch" },
          body: batch,
        });
        await res.arrayBuffer();
      }
    }));
    const target = (await nodes.describe("cu", leader))![0].logEndOffset!;
    await nodes.start(follower);
    const t0 = performance.now();
    await nodes.until("cu", (ps) => ps[0].logEndOffset === target, 300_000, follower);
    const secs = (performance.now() - t0) / 1000;
    const bytes = (target / records) * batch.length;
    report({
      suite: SUITE,
      name: `follower catch-up after ${Math.round(bytes / 1e6)} MB of lag`,
      value: bytes / secs / 1e6,
      unit: "MB/s",
    });
  } finally {
    await nodes.dispose();
  }
}

/**
 * Runs the replication benchmark.
 *
 * @param report receives the figures
 */
export async function run(report: Reporter): Promise<void> {
  await throughput(report);
  if (Deno.env.get("RILL_BENCH_REPLICATION_THROUGHPUT_ONLY") !== "1") {
    await failoverAndCatchUp(report);
  }
}
