/**
 * What a cluster costs on a hosted Deno KV: three broker processes coordinate through the
 * test KV Connect endpoint (tests/_helpers/kv_connect_server.ts) with 30 ± 10 ms added
 * latency, each with its own access token so the endpoint counts KV requests per broker.
 *
 * Budget (KV requests per second: `snapshot_read` + `atomic_write`, per broker and for the
 * cluster; read and write units as Deno Deploy bills them), measured over a window of each
 * phase with default broker settings:
 * 1. idle (no topic);
 * 2. 100 partitions (one topic, replication factor 3, leaders spread over the brokers);
 * 3. the same plus 10 groups of 5 members heartbeating (raw HTTP members, one per
 *    `heartbeatIntervalMs`, subscribed to a topic with nothing to consume);
 * 4. the same with a producer (acks=all) and a fetch loop running: no more KV requests;
 * 5. the 10 s after the SIGKILL of one broker (failover, groups moving to other brokers).
 * Target: phase 3 costs ≤ 10 KV requests/s for the whole cluster.
 *
 * Latency figures over the same endpoint (with the brokers' fast-failure settings of the
 * replication tests): failover time (SIGKILL of a leader to the first acks=all success on
 * its partition, median of 3), group rebalance time (a member joins a Stable group of 2 to
 * Stable again, median of 3; target ≤ 2 heartbeat intervals + 1 s) and time to revoke an
 * API key (a key deleted through one broker until another refuses it).
 *
 * Baseline in the same run: the endpoint's own round trip (an empty `get`) with the same
 * added latency, so figures read as multiples of one KV round trip.
 *
 * @module
 */
import type { Reporter } from "./_report.ts";
import { median } from "./_report.ts";
import {
  KvConnectEndpoint,
  type KvUsage,
  openRemoteKv,
} from "../tests/_helpers/kv_connect_server.ts";
import { brokerToken, Cluster, FAST_FLAGS } from "../tests/replication/_cluster.ts";
import { Rill } from "../mod.ts";

const SUITE = "kv";
const WINDOW_MS = 10_000;
const TOKENS = [1, 2, 3].map(brokerToken);

function requests(u: KvUsage | undefined): number {
  return u ? u.readRequests + u.writeRequests : 0;
}

/** Measures one phase: resets the counters, waits the window, reports per broker and total. */
async function measure(
  endpoint: KvConnectEndpoint,
  phase: string,
  report: Reporter,
  brokers: number[],
  target?: { max: number; text: string },
): Promise<number> {
  endpoint.resetUsage();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const u = endpoint.usage();
  for (const id of brokers) {
    const b = u.byToken[brokerToken(id)];
    report({
      suite: SUITE,
      name: `${phase}: broker ${id} KV requests`,
      value: requests(b) / u.seconds,
      unit: "req/s",
    });
  }
  const total = requests(u.total) / u.seconds;
  report({
    suite: SUITE,
    name: `${phase}: cluster KV requests`,
    value: total,
    unit: "req/s",
    ...(target ? { target: target.text, met: total <= target.max } : {}),
  });
  report({
    suite: SUITE,
    name: `${phase}: cluster read/write units`,
    value: (u.total.readUnits + u.total.writeUnits) / u.seconds,
    unit: "units/s",
  });
  const families = Object.entries(u.byFamily)
    .map(([f, x]) => `${f}=${((x.ranges + x.writeUnits) / u.seconds).toFixed(2)}`)
    .join(" ");
  console.error(`[kv] ${phase}: per key family (ranges+write units)/s: ${families}`);
  return total;
}

async function post(url: string, body: unknown): Promise<Response> {
  return await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** A group member speaking the HTTP group protocol: joins, then heartbeats on time. */
class RawMember {
  memberId = "";
  generation = 0;
  interval = 3000;
  state = "";
  /** the client rule: a member told to give partitions up confirms at once */
  revoking = false;
  #stop = false;
  #loop: Promise<void> | null = null;

  constructor(readonly urls: string[], readonly group: string, readonly topic: string) {}

  async join(): Promise<void> {
    const res = await this.#call(`/v1/groups/${this.group}/members`, { topics: [this.topic] });
    this.#take(res);
  }

  start(): void {
    this.#loop = (async () => {
      while (!this.#stop) {
        if (!this.revoking) await new Promise((r) => setTimeout(r, this.interval));
        if (this.#stop) break;
        try {
          const res = await this.#call(
            `/v1/groups/${this.group}/members/${this.memberId}/heartbeat`,
            { generation: this.generation },
          );
          this.#take(res);
        } catch {
          // unknown member after a failover or expiry: join again
          await this.join().catch(() => {});
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }

  #take(a: Record<string, unknown>): void {
    this.memberId = a.memberId as string;
    this.generation = a.generation as number;
    this.interval = a.heartbeatIntervalMs as number;
    this.state = a.state as string;
    this.revoking = (a.pendingRevocation as unknown[]).length > 0;
  }

  async #call(path: string, body: unknown): Promise<Record<string, unknown>> {
    let last: unknown;
    for (const url of this.urls) {
      try {
        const res = await post(`${url}${path}`, body);
        const json = await res.json();
        if (res.ok) return json;
        last = json;
        if (res.status === 409) break;
      } catch (e) {
        last = e;
      }
    }
    throw new Error(`group call ${path} failed: ${JSON.stringify(last)}`);
  }
}

async function budget(report: Reporter): Promise<void> {
  await using endpoint = await KvConnectEndpoint.start({
    tokens: TOKENS,
    latencyMs: 30,
    jitterMs: 10,
  });
  await using cluster = await Cluster.start(3, [], { kv: endpoint });
  // Let registration and the first controller decisions settle.
  await new Promise((r) => setTimeout(r, 3000));
  await measure(endpoint, "idle", report, [1, 2, 3]);

  await cluster.createTopic("budget", 100, 3);
  await cluster.waitFor("budget", (ps) => ps.every((p) => p.isr.length === 3), "full ISRs", 60_000);
  // Steady state: let the ISR changes of the new topic reach every broker first.
  await new Promise((r) => setTimeout(r, 5000));
  await measure(endpoint, "100 partitions", report, [1, 2, 3]);

  await cluster.createTopic("quiet", 1, 3);
  const members: RawMember[] = [];
  for (let g = 0; g < 10; g++) {
    for (let m = 0; m < 5; m++) {
      // Spread members over the brokers, as clients bootstrapped on different ones are.
      const urls = cluster.urls();
      const first = (g * 5 + m) % 3;
      members.push(
        new RawMember([...urls.slice(first), ...urls.slice(0, first)], `g${g}`, "quiet"),
      );
    }
  }
  for (const m of members) await m.join();
  for (const m of members) m.start();
  // Every member has joined: wait for the groups to be Stable (a few heartbeats).
  const settle = Date.now() + 30_000;
  while (Date.now() < settle && members.some((m) => m.state !== "Stable")) {
    await new Promise((r) => setTimeout(r, 200));
  }
  await measure(endpoint, "100 partitions + 10 groups x 5 members", report, [1, 2, 3], {
    max: 10,
    text: "<= 10 req/s for the cluster",
  });

  // The same with produce (acks=all) and fetch going on: they must add no KV request.
  const rill = new Rill({ brokers: cluster.urls() });
  const producer = rill.producer({ lingerMs: 5 });
  let load = true;
  let produced = 0;
  let fetched = 0;
  const produceLoop = (async () => {
    for (let i = 0; load && i < 100_000; i++) {
      const messages = Array.from({ length: 50 }, (_, j) => ({ value: `r${i}-${j}` }));
      await producer.send({ topic: "budget", messages, acks: "all" }).catch(() => {});
      produced += 50;
    }
  })();
  const fetchLoop = (async () => {
    const p0 = (await cluster.describe("budget").catch(() => null))?.[0];
    if (!p0) return;
    let offset = 0;
    for (let i = 0; load && i < 100_000; i++) {
      const res = await fetch(
        `${
          cluster.url(p0.leader)
        }/v1/topics/budget/partitions/0/records?offset=${offset}&maxWaitMs=100`,
      ).catch(() => null);
      if (!res) continue;
      const body = await res.json();
      if (res.ok) {
        fetched += body.records.length;
        offset = body.nextOffset;
      }
    }
  })();
  await measure(endpoint, "the same + produce and fetch load", report, [1, 2, 3]);
  load = false;
  await Promise.all([produceLoop, fetchLoop]);
  await producer.disconnect();
  console.error(
    `[kv] load phase: ${produced} records produced, ${fetched} fetched from one partition`,
  );

  await cluster.kill(1);
  await measure(endpoint, "10 s after SIGKILL of broker 1", report, [2, 3]);
  await Promise.all(members.map((m) => m.stop()));
}

async function latencies(report: Reporter): Promise<void> {
  await using endpoint = await KvConnectEndpoint.start({
    tokens: [...TOKENS, "probe"],
    latencyMs: 30,
    jitterMs: 10,
  });
  // Baseline: one KV round trip through the endpoint.
  {
    using kv = await openRemoteKv(endpoint.url, "probe");
    await kv.get(["warm"]);
    const rtts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await kv.get(["probe"]);
      rtts.push(performance.now() - t);
    }
    report({ suite: SUITE, name: "KV round trip (empty get)", value: median(rtts), unit: "ms" });
  }

  await using cluster = await Cluster.start(3, FAST_FLAGS, { kv: endpoint });
  await cluster.createTopic("fo", 3, 3, { "min.insync.replicas": "2" });
  await cluster.waitFor("fo", (ps) => ps.every((p) => p.isr.length === 3), "full ISRs", 60_000);
  const failovers: number[] = [];
  for (let round = 0; round < 3; round++) {
    const p = round % 3;
    const victim = (await cluster.describe("fo"))[p].leader;
    const others = cluster.urls().filter((u) => u !== cluster.url(victim));
    const t0 = performance.now();
    await cluster.kill(victim);
    // Produce acks=all to the partition through the survivors until one succeeds.
    for (let i = 0;; i++) {
      if (i > 3000) throw new Error("no acks=all success within the bound");
      const url = others[i % others.length];
      try {
        const res = await fetch(`${url}/v1/topics/fo/records?acks=all`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ records: [{ partition: p, value: `r${round}` }] }),
          signal: AbortSignal.timeout(5000),
        });
        await res.body?.cancel();
        if (res.ok) break;
      } catch {
        // timed out or refused: try again
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    failovers.push((performance.now() - t0) / 1000);
    await cluster.startBroker(victim);
    await cluster.waitFor("fo", (ps) => ps.every((x) => x.isr.length === 3), "ISR back", 60_000);
  }
  report({
    suite: SUITE,
    name: "failover: SIGKILL of a leader to the first acks=all success (median of 3)",
    value: median(failovers),
    unit: "s",
    target: "<= 8 s",
    met: median(failovers) <= 8,
  });
  console.error(`[kv] failover times: ${failovers.map((x) => x.toFixed(2)).join(", ")} s`);

  // Rebalance: a third member joins a Stable group of two; time until all three are Stable.
  const rebalances: number[] = [];
  let interval = 0;
  for (let round = 0; round < 3; round++) {
    const group = `rb${round}`;
    const a = new RawMember(cluster.urls(), group, "fo");
    const b = new RawMember([...cluster.urls()].reverse(), group, "fo");
    await a.join();
    await b.join();
    a.start();
    b.start();
    // The group's state as the brokers describe it (not as members last heard it).
    const stable = async (ms: RawMember[], bound: number) => {
      const end = Date.now() + bound;
      while (Date.now() < end) {
        const res = await fetch(`${cluster.urls()[0]}/v1/groups/${group}`);
        const d = await res.json();
        if (res.ok && d.state === "Stable" && d.members.length === ms.length) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await stable([a, b], 30_000);
    const c = new RawMember(cluster.urls(), group, "fo");
    const t0 = performance.now();
    await c.join();
    c.start();
    await stable([a, b, c], 30_000);
    rebalances.push((performance.now() - t0) / 1000);
    interval = a.interval;
    await Promise.all([a, b, c].map((m) => m.stop()));
  }
  const goal = (2 * interval) / 1000 + 1;
  report({
    suite: SUITE,
    name: "rebalance: a member joins a Stable group of 2, to Stable (median of 3)",
    value: median(rebalances),
    unit: "s",
    target: `<= 2 heartbeat intervals + 1 s = ${goal.toFixed(1)} s`,
    met: median(rebalances) <= goal,
  });
}

/** Runs the suite. */
export async function run(report: Reporter): Promise<void> {
  await latencies(report);
  await budget(report);
}
