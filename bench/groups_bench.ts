/**
 * Consumer group coordination costs (server side, no client needed), over a KV file in a
 * temp dir, through the `/v1/groups` sub-app in-process:
 *
 * - **rebalance time**: 10 members over 100 partitions; an 11th member joins, then leaves,
 *   ten times each. A round is one heartbeat per member (each member heartbeats once per
 *   interval, in random order); a member told to revoke confirms at once, as the client rule
 *   says. Reported: heartbeat intervals until Stable (the stabilising heartbeat's place in
 *   its round counts as a fraction; target ≤ 2), wall time per round of heartbeats, and partitions moved per join (sticky's minimum is 100/11 ≈ 9).
 * - **idle KV ops/s**: 10 Stable members heartbeating every third of a 10 s session for one
 *   simulated minute (controlled clock), counting KV calls through a counting wrapper, set
 *   against the KV's own atomic-write rate measured in the same run.
 * - **group consume throughput**: a broker process holds a 3-partition topic; three group
 *   members (one process, the client's `consumer({ groupId })`) read all of it, from the
 *   first join until the last record, against one consumer `assign`ed the same three
 *   partitions reading the same data in the same run (best of three rounds each, alternated).
 *   Target: ratio ≥ 0.9.
 *
 * @module
 */
import type { Hono } from "hono";
import type { Reporter } from "./_report.ts";
import { groupRoutes } from "../src/http/routes/groups.ts";
import { type Consumer, Rill } from "../mod.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";

const SUITE = "groups";

interface Answer {
  memberId: string;
  generation: number;
  assignment: { topic: string; partition: number }[];
  pendingRevocation: unknown[];
  heartbeatIntervalMs: number;
  state: string;
}

/** KV calls counted by {@linkcode countingKv}. */
interface KvCounts {
  /** get, getMany and list calls */
  reads: number;
  /** atomic commits, set and delete calls */
  writes: number;
  /** entries returned by list calls */
  listed: number;
}

/** Wraps a Deno.Kv so that every call is counted (the bench's only instrumentation). */
function countingKv(kv: Deno.Kv, counts: KvCounts): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === "get" || prop === "getMany") {
        return (...args: unknown[]) => {
          counts.reads++;
          return (target[prop] as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      if (prop === "set" || prop === "delete") {
        return (...args: unknown[]) => {
          counts.writes++;
          return (target[prop] as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      if (prop === "list") {
        return (...args: Parameters<Deno.Kv["list"]>) => {
          counts.reads++;
          const it = target.list(...args);
          return {
            get cursor() {
              return it.cursor;
            },
            async *[Symbol.asyncIterator]() {
              for await (const e of it) {
                counts.listed++;
                yield e;
              }
            },
          };
        };
      }
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => {
            counts.writes++;
            return commit();
          };
          return op;
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

async function post(app: Hono, path: string, body: unknown): Promise<Answer> {
  const res = await app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json as Answer;
}

/** One heartbeat following the client rule: a revocation is confirmed at once. */
async function heartbeat(app: Hono, g: string, a: Answer): Promise<Answer> {
  let next = await post(app, `/${g}/members/${a.memberId}/heartbeat`, { generation: a.generation });
  for (let i = 0; i < 3 && next.pendingRevocation.length > 0; i++) {
    next = await post(app, `/${g}/members/${next.memberId}/heartbeat`, {
      generation: next.generation,
    });
  }
  return next;
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/**
 * Heartbeats members round by round (one heartbeat per member per interval, in random
 * order) until an answer reports the group Stable; returns how many intervals that took
 * (a fraction: the stabilising heartbeat's place in its round) and the wall time per round.
 */
async function settle(
  app: Hono,
  g: string,
  members: Map<string, Answer>,
): Promise<{ intervals: number; msPerRound: number }> {
  const t0 = performance.now();
  for (let round = 1; round <= 20; round++) {
    const order = shuffle([...members.keys()]);
    for (const [pos, id] of order.entries()) {
      const a = await heartbeat(app, g, members.get(id)!);
      members.set(id, a);
      if (a.state === "Stable") {
        const intervals = round - 1 + (pos + 1) / order.length;
        return { intervals, msPerRound: (performance.now() - t0) / intervals };
      }
    }
  }
  throw new Error("the group did not become Stable in 20 rounds");
}

function owners(members: Map<string, Answer>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, a] of members) {
    for (const tp of a.assignment) out.set(`${tp.topic}-${tp.partition}`, id);
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Runs the suite.
 *
 * @param report receives the figures
 */
export async function run(report: Reporter): Promise<void> {
  await coordination(report);
  await consumeThroughput(report);
}

const TPUT_PARTITIONS = 3;
const TPUT_RECORDS = 150_000; // per partition
const TPUT_VALUE = "x".repeat(100);

/** Reads the whole topic with `consumers`; resolves with the seconds it took. */
async function readAll(
  consumers: Consumer[],
  start: (c: Consumer) => Promise<void>,
  total: number,
): Promise<number> {
  let seen = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const t0 = performance.now();
  for (const c of consumers) {
    await start(c);
    await c.run({
      eachBatch: ({ batch }) => {
        seen += batch.messages.length;
        if (seen >= total) done();
      },
    });
  }
  const guard = setTimeout(done, 120_000);
  await all;
  clearTimeout(guard);
  const secs = (performance.now() - t0) / 1000;
  if (seen < total) throw new Error(`read ${seen} of ${total} records within 120 s`);
  await Promise.all(consumers.map((c) => c.disconnect()));
  return secs;
}

async function consumeThroughput(report: Reporter): Promise<void> {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  await rill.admin().createTopic({ topic: "tput", numPartitions: TPUT_PARTITIONS });
  const producer = rill.producer({ lingerMs: 5 });
  for (let p = 0; p < TPUT_PARTITIONS; p++) {
    for (let i = 0; i < TPUT_RECORDS; i += 5000) {
      await producer.send({
        topic: "tput",
        messages: Array.from({ length: 5000 }, () => ({ partition: p, value: TPUT_VALUE })),
      });
    }
  }
  await producer.disconnect();
  const total = TPUT_PARTITIONS * TPUT_RECORDS;
  const single: number[] = [];
  const group: number[] = [];
  for (let round = 0; round < 3; round++) {
    single.push(
      await readAll([rill.consumer({ maxWaitMs: 100 })], async (c) => {
        await c.assign(
          Array.from(
            { length: TPUT_PARTITIONS },
            (_, p) => ({ topic: "tput", partition: p, offset: "earliest" }),
          ),
        );
      }, total),
    );
    const members = [0, 1, 2].map(() =>
      rill.consumer({ groupId: `tput-${round}`, maxWaitMs: 100, sessionTimeoutMs: 3000 })
    );
    group.push(
      await readAll(members, async (c) => {
        await c.subscribe({ topics: ["tput"], fromBeginning: true });
      }, total),
    );
  }
  const singleRate = total / Math.min(...single);
  const groupRate = total / Math.min(...group);
  report({
    suite: SUITE,
    name: "assign consumer over 3 partitions (baseline)",
    value: singleRate,
    unit: "records/s",
  });
  report({
    suite: SUITE,
    name: "group consume, 3 members over 3 partitions (join to last record)",
    value: groupRate,
    unit: "records/s",
    ratio: groupRate / singleRate,
    baseline: "one assign consumer, same data, same run",
    target: ">= 0.9",
    met: groupRate / singleRate >= 0.9,
  });
}

async function coordination(report: Reporter): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-groups-" });
  const raw = await Deno.openKv(`${dir}/meta.kv`);
  try {
    const counts: KvCounts = { reads: 0, writes: 0, listed: 0 };
    const kv = countingKv(raw, counts);
    const clock = { now: Date.now() };
    const app = groupRoutes({
      kv,
      now: () => clock.now,
      partitionCount: (t) => Promise.resolve(t === "events" ? 100 : null),
      logStartOffset: () => 0,
      logEndOffset: () => 0,
      offsetForTimestamp: () => Promise.resolve(null),
    });

    // --- rebalance rounds: 10 members, 100 partitions
    const g = "bench";
    const members = new Map<string, Answer>();
    for (let i = 0; i < 10; i++) {
      const a = await post(app, `/${g}/members`, { topics: ["events"], memberId: `m${i}` });
      members.set(a.memberId, a);
    }
    await settle(app, g, members);
    const joinRounds: number[] = [];
    const leaveRounds: number[] = [];
    const roundMs: number[] = [];
    const moved: number[] = [];
    for (let i = 0; i < 10; i++) {
      const before = owners(members);
      const a = await post(app, `/${g}/members`, { topics: ["events"], memberId: `extra${i}` });
      members.set(a.memberId, a);
      const j = await settle(app, g, members);
      joinRounds.push(j.intervals);
      roundMs.push(j.msPerRound);
      let n = 0;
      for (const [k, id] of owners(members)) if (before.get(k) !== id) n++;
      moved.push(n);
      // a member leaves (alternately the newcomer and an old member, which rejoins later)
      const leaver = i % 2 === 0 ? a.memberId : `m${i}`;
      const res = await app.request(`/${g}/members/${leaver}`, { method: "DELETE" });
      await res.body?.cancel();
      members.delete(leaver);
      const l = await settle(app, g, members);
      leaveRounds.push(l.intervals);
      roundMs.push(l.msPerRound);
      if (leaver !== a.memberId) {
        // put the group back to 10 members + keep the newcomer out for the next iteration
        const res2 = await app.request(`/${g}/members/${a.memberId}`, { method: "DELETE" });
        await res2.body?.cancel();
        members.delete(a.memberId);
        const back = await post(app, `/${g}/members`, { topics: ["events"], memberId: leaver });
        members.set(back.memberId, back);
        await settle(app, g, members);
      }
    }
    report({
      suite: SUITE,
      name: "rebalance on join, 10 members/100 partitions: median",
      value: median(joinRounds),
      unit: "heartbeat intervals",
      target: "<= 2",
      met: median(joinRounds) <= 2,
    });
    report({
      suite: SUITE,
      name: "rebalance on join: max",
      value: Math.max(...joinRounds),
      unit: "heartbeat intervals",
      target: "<= 2",
      met: Math.max(...joinRounds) <= 2,
    });
    report({
      suite: SUITE,
      name: "rebalance on leave: median",
      value: median(leaveRounds),
      unit: "heartbeat intervals",
      target: "<= 2",
      met: median(leaveRounds) <= 2,
    });
    report({
      suite: SUITE,
      name: "rebalance on leave: max",
      value: Math.max(...leaveRounds),
      unit: "heartbeat intervals",
      target: "<= 2",
      met: Math.max(...leaveRounds) <= 2,
    });
    report({
      suite: SUITE,
      name: "partitions moved when an 11th member joins (sticky), median",
      value: median(moved),
      unit: "partitions",
      target: "minimum is 9 (100/11)",
      met: median(moved) <= 10,
    });
    report({
      suite: SUITE,
      name: "wall time per rebalance round (11 heartbeats + confirmations)",
      value: median(roundMs),
      unit: "ms",
    });

    // --- KV write capacity of this file, the baseline
    const n = 300;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await raw.atomic().set(["bench", "w", i % 10], i).commit();
    const kvOpsPerSec = n / ((performance.now() - t0) / 1000);
    report({
      suite: SUITE,
      name: "KV atomic writes, sequential (baseline)",
      value: kvOpsPerSec,
      unit: "ops/s",
    });

    // --- idle members: 10 Stable members heartbeating for one simulated minute
    const idle = "idle";
    const idleMembers = new Map<string, Answer>();
    for (let i = 0; i < 10; i++) {
      const a = await post(app, `/${idle}/members`, { topics: ["events"], memberId: `i${i}` });
      idleMembers.set(a.memberId, a);
    }
    await settle(app, idle, idleMembers);
    const interval = idleMembers.get("i0")!.heartbeatIntervalMs;
    const next = new Map(
      [...idleMembers.keys()].map((id, i) => [id, clock.now + (interval * i) / 10]),
    );
    const start = clock.now;
    const simulatedMs = 60_000;
    counts.reads = counts.writes = counts.listed = 0;
    const latencies: number[] = [];
    for (let beats = 0; beats < 10_000; beats++) {
      const [id, at] = [...next].reduce((a, b) => (b[1] < a[1] ? b : a));
      if (at - start >= simulatedMs) break;
      clock.now = at;
      const t = performance.now();
      idleMembers.set(id, await heartbeat(app, idle, idleMembers.get(id)!));
      latencies.push(performance.now() - t);
      next.set(id, at + interval);
    }
    const ops = counts.reads + counts.writes;
    const opsPerSec = ops / (simulatedMs / 1000);
    report({
      suite: SUITE,
      name: "KV ops/s of 10 idle members (10 s session, 3.3 s heartbeats)",
      value: opsPerSec,
      unit: "ops/s",
      ratio: opsPerSec / kvOpsPerSec,
      baseline: "KV atomic writes/s",
      target: "well under ~1k/s (< 5% of KV)",
      met: opsPerSec / kvOpsPerSec < 0.05,
    });
    report({
      suite: SUITE,
      name: "share of the KV's write rate spent by 10 idle members",
      value: (100 * opsPerSec) / kvOpsPerSec,
      unit: "%",
      target: "< 5%",
      met: opsPerSec / kvOpsPerSec < 0.05,
    });
    report({
      suite: SUITE,
      name: "KV calls per idle heartbeat (reads + writes)",
      value: ops / latencies.length,
      unit: "calls",
      target: "about 1 read + 1 write",
      met: ops / latencies.length <= 2.01,
    });
    report({
      suite: SUITE,
      name: "KV entries listed per idle heartbeat",
      value: counts.listed / latencies.length,
      unit: "entries",
    });
    report({
      suite: SUITE,
      name: "idle heartbeat latency, median",
      value: median(latencies),
      unit: "ms",
    });
  } finally {
    raw.close();
    await Deno.remove(dir, { recursive: true });
  }
}
