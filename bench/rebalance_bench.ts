/**
 * Rebalance benchmark (issue 20): broker processes on loopback sharing one KV file.
 *
 * - re-replication: a 3-broker cluster (replication factor 2, 6 partitions) where one broker
 *   holds `RILL_BENCH_REBALANCE_MB` (default 256; 1024 for the issue's 1 GB case) MB of
 *   data (the topic is filled with 1.5 times that: each broker holds 2/3 of it); that broker
 *   is SIGKILLed for good (`--replica-replacement-delay-ms 1000`); the time from the kill
 *   until every partition is back to 2 in-sync replicas on live brokers, and the rate at
 *   which the dead broker's bytes were rebuilt (its bytes / time from the first move's start
 *   to the last one's end). One round per throttle in `RILL_BENCH_REBALANCE_THROTTLES`
 *   (MB/s per receiving broker, 0 = off; default `0,50,8`: off, the issue's 50 MB/s, and
 *   8 MB/s, below this machine's copy rate, so that the throttle binds). Each rate is
 *   reported against the floors measured in the same round (copying the same partition
 *   directories with `Deno.copyFile`: the disk's rate for moving those bytes; and serving
 *   the same files with a bare `Deno.serve` to a `fetch` over loopback that writes them: the
 *   rate of moving them over HTTP with no broker), against the
 *   throttle's cap (2 receiving brokers × the rate: an upper bound; with the default
 *   `--max-concurrent-moves-per-broker 1` the two survivors' moves share both brokers and
 *   run one at a time, so about one rate's worth) and against the throttle-off round of
 *   the same run. Every wait is bounded (`RILL_BENCH_REBALANCE_TIMEOUT_S`, default 600 s
 *   per round) and the disk's free space is checked before filling.
 * - produce p99 before, during and after a rebalance: acks=all 1 KiB records, one request
 *   at a time per partition (6 partitions), while a 4th broker gets its share
 *   (`rebalance --execute`) and gives it back (`decommission`, then `recommission`),
 *   alternately, under the throttle, `RILL_BENCH_REBALANCE_ROUNDS` (default 4) times; each
 *   round measures the p99 just before its move and during it, and each kind's figure is
 *   the median of its rounds' during / before ratios (target ≤ 3), so that the drift of a
 *   shared machine's load cancels out. (Every move of both kinds involves broker 4, so with
 *   the default `--max-concurrent-moves-per-broker 1` they run one at a time, each at most at
 *   the throttle's rate; `RILL_BENCH_MOVES_PER_BROKER` sets that flag, e.g. 5 for the
 *   decommission copying onto 3 brokers at once.) A latency is the time until the record is
 *   acknowledged, retries included (a leader that moved answers NOT_LEADER_OR_FOLLOWER and
 *   the record goes to the new one), as a client sees it.
 * - leaders after a restart: 3 brokers, RF 3, 12 partitions, an acks=all load; broker 1 is
 *   killed and restarted; the time until each broker leads 4 ± 1 partitions again, in
 *   leader imbalance check intervals (target ≤ 2).
 *
 * `RILL_BENCH_REBALANCE_PARTS=copy,latency,leaders` picks the parts (default all three).
 *
 * @module
 */
import { logRounds, median, pairedRatio, type Reporter } from "./_report.ts";
import { encodeBatch } from "../src/protocol/record_batch.ts";
import { type BrokerProcess, startBroker } from "../tests/_helpers/broker_process.ts";

const SUITE = "rebalance";
/** MB of data on the broker that is lost */
const MB = Number(Deno.env.get("RILL_BENCH_REBALANCE_MB") ?? "256");
/** MB/s per receiving broker of each re-replication round (0: off) */
const THROTTLES = (Deno.env.get("RILL_BENCH_REBALANCE_THROTTLES") ?? "0,50,8").split(",")
  .map(Number);
/** the throttle of the rebalance latency part */
const THROTTLE_MBPS = Number(Deno.env.get("RILL_BENCH_THROTTLE_MBPS") ?? "50");
/** `--max-concurrent-moves-per-broker` of the latency part (unset: the broker's default) */
const MOVES_PER_BROKER = Deno.env.get("RILL_BENCH_MOVES_PER_BROKER");
/** rounds of the latency part: moves onto a new broker and off it, alternately */
const ROUNDS = Number(Deno.env.get("RILL_BENCH_REBALANCE_ROUNDS") ?? "4");
const PARTS = (Deno.env.get("RILL_BENCH_REBALANCE_PARTS") ?? "copy,latency,leaders").split(",");
/** `--leader-imbalance-check-interval-seconds` of the leaders part */
const LEADER_CHECK_SECONDS = 3;
const ROUND_TIMEOUT_MS = 1000 * Number(Deno.env.get("RILL_BENCH_REBALANCE_TIMEOUT_S") ?? "600");
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
  async waitFor(topic: string, cond: (ps: PartitionJson[]) => boolean, ms = ROUND_TIMEOUT_MS) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      try {
        if (cond(await this.describe(topic))) return;
      } catch {
        // retry
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out after ${ms} ms waiting on ${topic}`);
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
  const deadline = Date.now() + ROUND_TIMEOUT_MS;
  const value = new Uint8Array(1000);
  for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
  const batch = encodeBatch(Array.from({ length: 250 }, () => ({ key: null, value })));
  const perPartition = Math.ceil(mb * 1024 * 1024 / batch.length / PARTITIONS);
  const ps = await n.describe(topic);
  await Promise.all(ps.map(async (p) => {
    for (let i = 0; i < perPartition; i++) {
      if (Date.now() > deadline) {
        throw new Error(`filling ${mb} MB took over ${ROUND_TIMEOUT_MS} ms`);
      }
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

/**
 * The network floor: the same files served by a bare `Deno.serve` and fetched over loopback
 * into `to`, one file at a time per directory, the directories at once (as the moves run).
 */
async function httpCopyDirs(dirs: { from: string; to: string }[]): Promise<number> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    return new Response((await Deno.open(path)).readable);
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    const start = performance.now();
    await Promise.all(dirs.map(async ({ from, to }) => {
      await Deno.mkdir(to, { recursive: true });
      for await (const e of Deno.readDir(from)) {
        if (!e.isFile) continue;
        const res = await fetch(`${base}${encodeURI(`${from}/${e.name}`)}`);
        const file = await Deno.open(`${to}/${e.name}`, { write: true, create: true });
        await res.body!.pipeTo(file.writable);
      }
    }));
    return (performance.now() - start) / 1000;
  } finally {
    await server.shutdown();
  }
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
): Promise<
  { seconds: number; copySeconds: number; mb: number; floorSeconds: number; httpSeconds: number }
> {
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
    // RF 2 over 3 brokers: each holds 2/3 of the topic's bytes
    await fill(n, "data", MB * 1.5);
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
    const httpSeconds = await httpCopyDirs(hosted.map((p) => ({
      from: `${dir}/b${victim}/data-${p.partition}`,
      to: `${dir}/floor/data-${p.partition}`,
    })));
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
    });
    const end = performance.now();
    return {
      seconds: (end - start) / 1000,
      copySeconds: (end - (firstMove || start)) / 1000,
      mb: bytes / 1024 / 1024,
      floorSeconds,
      httpSeconds,
    };
  } finally {
    await n.close();
  }
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
}

/** Per-record latencies (first attempt to acknowledgement) and how many attempts failed. */
async function produceLatencies(
  n: Nodes,
  topic: string,
  until: () => boolean,
  onAck: () => void = () => {},
): Promise<{ lat: number[]; retries: number }> {
  const value = new Uint8Array(1000);
  const batch = encodeBatch([{ key: null, value }]);
  const lat: number[] = [];
  let retries = 0;
  const ps = await n.describe(topic);
  await Promise.all(ps.map(async (p) => {
    let leader = p.leader;
    for (let i = 0; i < 1_000_000 && !until(); i++) {
      const t = performance.now();
      for (let attempt = 0; attempt < 200; attempt++) {
        if (leader < 0 || !n.procs.has(leader)) { // leaderless, or a broker this bench killed
          await new Promise((r) => setTimeout(r, 10));
          leader = (await n.describe(topic).catch(() => ps))[p.partition].leader;
          continue;
        }
        const res = await fetch(
          `${n.url(leader)}/v1/topics/${topic}/records?partition=${p.partition}&acks=all`,
          {
            method: "POST",
            headers: { "content-type": "application/vnd.rill.batch" },
            body: batch.slice(),
          },
        ).catch(() => null);
        if (res?.ok) {
          await res.body?.cancel();
          lat.push(performance.now() - t);
          onAck();
          break;
        }
        retries++;
        // as the client does: the new leader from the error's hint, else from metadata
        const hint = await res?.json().then((b) => b?.error?.leaderId, () => undefined);
        leader = typeof hint === "number" && n.procs.has(hint)
          ? hint
          : (await n.describe(topic).catch(() => ps))[p.partition].leader;
      }
    }
  }));
  return { lat, retries };
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
    ...(MOVES_PER_BROKER ? ["--max-concurrent-moves-per-broker", MOVES_PER_BROKER] : []),
  ]);
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${n.any()}/v1/cluster/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${path}: ${JSON.stringify(json)}`);
    return json;
  };
  try {
    for (const id of [1, 2, 3]) await n.start(id);
    await createTopic(n, "data", PARTITIONS, 2);
    await fill(n, "data", Math.max(16, MB / 4));
    await createTopic(n, "live", PARTITIONS, 2);
    const phase = async (ms: number) => {
      const end = Date.now() + ms;
      return (await produceLatencies(n, "live", () => Date.now() > end)).lat;
    };
    await n.start(4);
    // sizes reach KV with the leaders' heartbeats
    await new Promise((r) => setTimeout(r, 2500));
    const before: number[] = [], during: number[] = [];
    let after: number[] = [];
    const labels: string[] = [];
    // Paired rounds (the machine's load drifts; each ratio compares neighbours): the data
    // moves onto broker 4 (rebalance), then off it (decommission, then recommission).
    for (let round = 0; round < ROUNDS; round++) {
      const quiet = await phase(PHASE_SECONDS * 1000);
      let settled = false;
      const measuring = produceLatencies(n, "live", () => settled);
      const onto4 = round % 2 === 0;
      const plan = onto4
        ? await post("rebalance", { execute: true })
        : await post("decommission", { brokerId: 4, execute: true });
      const started = performance.now();
      for (const deadline = Date.now() + ROUND_TIMEOUT_MS; Date.now() < deadline;) {
        const s = await (await fetch(`${n.any()}/v1/cluster/status`)).json();
        if (s.moving.length === 0 && s.pending === 0 && s.underReplicated === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const moveSeconds = (performance.now() - started) / 1000;
      settled = true;
      const { lat, retries } = await measuring;
      if (!onto4) await post("recommission", { brokerId: 4 });
      before.push(p99(quiet));
      during.push(p99(lat));
      labels.push(
        `${onto4 ? "onto" : "off"} broker 4: ${plan.moves.length} moves in ${
          moveSeconds.toFixed(1)
        } s, ${lat.length} records, ${retries} retried`,
      );
      if (round === ROUNDS - 1) after = await phase(PHASE_SECONDS * 1000);
    }
    logRounds(SUITE, { "p99 before (ms)": before, "p99 during (ms)": during });
    for (const l of labels) console.error(`${SUITE}: ${l}`);
    for (const kind of ["rebalance onto a new broker", "decommission of that broker"]) {
      const rounds = before.map((_, i) => i).filter((i) => (i % 2 === 0) === kind.startsWith("re"));
      if (rounds.length === 0) continue;
      const b = median(rounds.map((i) => before[i])), d = median(rounds.map((i) => during[i]));
      const ratio = pairedRatio(rounds.map((i) => during[i]), rounds.map((i) => before[i]));
      report({
        suite: SUITE,
        name: `produce p99 during a ${kind} (median of ${rounds.length} round(s): ${
          d.toFixed(1)
        } ms, before ${b.toFixed(1)} ms; throttle ${THROTTLE_MBPS} MB/s per broker, ${
          MOVES_PER_BROKER ?? "default"
        } move(s) per broker)`,
        value: d,
        unit: "ms",
        ratio,
        baseline: "p99 just before, same round (median of the rounds' ratios)",
        target: "<= 3x",
        met: ratio <= 3,
      });
    }
    const a = p99(after);
    report({
      suite: SUITE,
      name: "produce p99 after the last move",
      value: a,
      unit: "ms",
      ratio: a / before[before.length - 1],
      baseline: "p99 before the last move",
    });
  } finally {
    await n.close();
  }
}

/**
 * Preferred leaders after a restart (the issue's first test, timed here rather than in a
 * test): 3 brokers, RF 3, 12 partitions, an acks=all load; broker 1 is killed, its
 * leaderships fail over, it restarts; the time from its restart until each broker leads
 * 4 ± 1 partitions, in check intervals (`--leader-imbalance-check-interval-seconds`).
 */
async function leaderReturn(report: Reporter): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-rebalance-" });
  const interval = LEADER_CHECK_SECONDS;
  const n = new Nodes(dir, [
    "--session-timeout-ms",
    String(SESSION_MS),
    "--replica-lag-time-max-ms",
    "1500",
    "--metadata-poll-ms",
    "100",
    "--leader-imbalance-check-interval-seconds",
    String(interval),
  ]);
  const leads = (ps: PartitionJson[]) =>
    [1, 2, 3].map((id) => ps.filter((x) => x.leader === id).length);
  try {
    for (const id of [1, 2, 3]) await n.start(id);
    await createTopic(n, "pl", 12, 3);
    let done = false;
    let acked = 0;
    const load = produceLatencies(n, "pl", () => done, () => acked++);
    for (let i = 0; i < 1000 && acked < 100; i++) await new Promise((r) => setTimeout(r, 10));
    await n.kill(1);
    await n.waitFor("pl", (ps) => ps.every((p) => p.leader !== 1 && p.leader >= 0));
    await n.start(1);
    const restarted = performance.now();
    let inSync = 0;
    await n.waitFor("pl", (ps) => {
      if (inSync === 0 && ps.every((p) => p.isr.length === 3)) inSync = performance.now();
      return inSync > 0 && leads(ps).every((k) => k >= 3 && k <= 5);
    });
    const seconds = (performance.now() - restarted) / 1000;
    done = true;
    const { lat, retries } = await load;
    report({
      suite: SUITE,
      name: `leaders even again after a restart (back in every ISR after ${
        ((inSync - restarted) / 1000).toFixed(1)
      } s; ${lat.length} acks=all records, ${retries} retried)`,
      value: seconds,
      unit: "s",
      ratio: seconds / interval,
      baseline: `the check interval (${interval} s)`,
      target: "<= 2 check intervals",
      met: seconds <= 2 * interval,
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
  if (PARTS.includes("copy")) await rereplication(report);
  if (PARTS.includes("latency")) await rebalanceLatency(report);
  if (PARTS.includes("leaders")) await leaderReturn(report);
}

async function rereplication(report: Reporter): Promise<void> {
  // lost bytes ×1.5 in the topic, ×2 replicas, + one floor copy of the lost bytes
  const needed = MB * (1.5 * 2 + 1) * 1024 * 1024;
  const free = freeBytes(Deno.env.get("TMPDIR") ?? "/tmp");
  if (free !== null && free < needed * 1.2) {
    throw new Error(
      `RILL_BENCH_REBALANCE_MB=${MB} needs ~${
        (needed / 2 ** 30).toFixed(1)
      } GiB free in the temp dir; ${(free / 2 ** 30).toFixed(1)} GiB are`,
    );
  }
  let offRate: number | null = null;
  for (const throttle of THROTTLES) {
    const r = await rereplicate(throttle);
    const copySeconds = Math.max(0.001, r.copySeconds);
    const rate = r.mb / copySeconds;
    const floorRate = r.mb / Math.max(0.001, r.floorSeconds);
    const httpRate = r.mb / Math.max(0.001, r.httpSeconds);
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
      name: `re-replication rate vs the disk copy floor (${floorRate.toFixed(0)} MB/s), ${label}`,
      value: rate,
      unit: "MB/s",
      ratio: rate / floorRate,
      baseline: "Deno.copyFile of the same directories, same round",
    });
    report({
      suite: SUITE,
      name: `re-replication rate vs a bare HTTP copy floor (${httpRate.toFixed(0)} MB/s), ${label}`,
      value: rate,
      unit: "MB/s",
      ratio: rate / httpRate,
      baseline: "the same files through Deno.serve + fetch over loopback, same round",
    });
    if (throttle === 0) {
      offRate = rate;
      continue;
    }
    const cap = 2 * throttle; // 2 receiving brokers
    report({
      suite: SUITE,
      name: `re-replication rate vs the throttle's cap (${cap} MB/s), ${label}`,
      value: rate,
      unit: "MB/s",
      ratio: rate / cap,
      baseline: "2 receiving brokers × the throttle",
      target: "<= 1.1 (the throttle holds)",
      met: rate / cap <= 1.1,
    });
    if (offRate !== null) {
      report({
        suite: SUITE,
        name: `re-replication rate vs the throttle-off round, ${label}`,
        value: rate,
        unit: "MB/s",
        ratio: rate / offRate,
        baseline: `throttle off, same run (${offRate.toFixed(0)} MB/s)`,
      });
    }
  }
}

/** Free bytes of the file system holding `path` (`df`), or null when unknown. */
function freeBytes(path: string): number | null {
  try {
    const out = new Deno.Command("df", { args: ["-Pk", path] }).outputSync();
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    const kb = Number(line.split(/\s+/)[3]);
    return Number.isFinite(kb) ? kb * 1024 : null;
  } catch {
    return null;
  }
}
