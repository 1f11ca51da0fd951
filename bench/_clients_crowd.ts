/**
 * The crowd of the clients bench (clients_bench.ts): 5,000 clients connected to one broker at
 * once, and its floor, a bare WebSocket server doing the same fan-out; RSS and the latency of
 * a GET sampled every 100 ms while they run.
 *
 * @module
 */
import type { Reporter } from "./_report.ts";
import type { BrokerProcess } from "../tests/_helpers/broker_process.ts";
import {
  type Floor,
  fmt,
  HTTP_ONLY,
  loadText,
  procCpuMs,
  procMemMiB,
  SECONDS,
  SUITE,
  worker,
} from "./_clients_common.ts";

/**
 * One GET sampled: when (ms from the start) and how long it took, and the server's main thread
 * (where its event loop runs) as `/proc/<pid>/schedstat` had it just after: ns on a CPU, ns
 * runnable but waiting for one.
 */
interface Sample {
  at: number;
  ms: number;
  runNs: number;
  waitNs: number;
}

/** The server's main thread's time on a CPU and waiting for one, in ns, from /proc. */
function schedstat(pid: number): { runNs: number; waitNs: number } {
  const [run, wait] = Deno.readTextFileSync(`/proc/${pid}/schedstat`).split(" ");
  return { runNs: Number(run), waitNs: Number(wait) };
}

/** RSS and GET latency of a server, sampled every 100 ms while `work` runs. */
async function sampled<T>(
  pid: number,
  getUrl: string,
  work: () => Promise<T>,
): Promise<{ result: T; samples: Sample[]; maxRss: number; cpuMs: number }> {
  const samples: Sample[] = [];
  let sampling = true;
  let maxRss = 0;
  const t0 = performance.now();
  const sampler = (async () => {
    while (sampling) {
      const t = performance.now();
      try {
        const res = await fetch(getUrl);
        await res.body?.cancel();
        samples.push({ at: t - t0, ms: performance.now() - t, ...schedstat(pid) });
      } catch {
        samples.push({ at: t - t0, ms: Infinity, ...schedstat(pid) });
      }
      maxRss = Math.max(maxRss, procMemMiB(pid, "VmRSS"));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const c0 = procCpuMs(pid);
  const result = await work();
  const cpuMs = procCpuMs(pid) - c0;
  sampling = false;
  await sampler;
  return { result, samples, maxRss, cpuMs };
}

/** The nice(1) level of the client processes in the crowd's second run. */
export const CROWD_NICE = 19;

const CROWD = {
  processes: 5,
  perProcess: 1000,
  consumersPer: 180,
  rampMs: 8000,
  seconds: Math.max(10, SECONDS * 3),
};

/**
 * The latencies sampled, sorted: `steady` from 2 s after the ramp until the clients stop
 * (all connected; the workers stop their clients at ramp + seconds after they start, which
 * is later than that by their start-up), `closing` after it (every client disconnecting at
 * once), and all of them.
 */
function crowdLatencies(samples: Sample[]) {
  const stop = CROWD.rampMs + CROWD.seconds * 1000;
  const sorted = (xs: { ms: number }[]) => xs.map((x) => x.ms).sort((a, b) => a - b);
  const steady = samples.filter((x) => x.at >= CROWD.rampMs + 2000 && x.at < stop);
  return {
    steady: sorted(steady),
    closing: sorted(samples.filter((x) => x.at >= stop)),
    all: sorted(samples),
    thread: threadText(steady),
  };
}

/**
 * How the server's main thread spent the steady window: on a CPU, waiting for one (runnable,
 * the machine busy elsewhere), and the rest (idle, or blocked). A GET waits behind the first
 * two; the second is the machine's share, not the server's work (2 cores, the client
 * processes and whatever else runs on the machine).
 */
function threadText(steady: Sample[]): string {
  if (steady.length < 2) return "main thread: too few samples";
  const first = steady[0];
  const last = steady[steady.length - 1];
  const wallNs = (last.at - first.at) * 1e6;
  const pct = (ns: number) => `${Math.round((100 * ns) / wallNs)}%`;
  return `main thread on a CPU ${pct(last.runNs - first.runNs)}, waiting for one ${
    pct(last.waitNs - first.waitNs)
  } of the time`;
}

/** How a line names the client processes' nice level (nothing at 0). */
function niceText(nice: number): string {
  return nice > 0 ? `, client processes at nice ${nice}` : "";
}

/** The median, p99 and worst of sorted latencies, and the load average, as a unit text. */
function latencyText(sorted: number[]): string {
  return `p50 ${fmt(sorted[sorted.length >> 1] ?? NaN)} ms, p99 ${
    fmt(sorted[Math.floor(sorted.length * 0.99)] ?? NaN)
  } ms, ${sorted.length} samples`;
}

/**
 * The crowd against the broker. `nice`: the client processes' nice(1) level (0: the broker's
 * own priority); the lines are labelled with it.
 */
export async function crowd(
  report: Reporter,
  broker: BrokerProcess,
  topic: string,
  nice = 0,
): Promise<number> {
  const { processes, perProcess, consumersPer, rampMs, seconds } = CROWD;
  const rss0 = procMemMiB(broker.pid, "VmRSS");
  // /healthz and RSS every 100 ms: while clients connect, and once all are connected.
  const { result: results, samples, maxRss, cpuMs } = await sampled(
    broker.pid,
    `${broker.url}/healthz`,
    () =>
      Promise.all(
        Array.from({ length: processes }, () =>
          worker({
            mode: "crowd",
            url: broker.url,
            topic,
            transport: HTTP_ONLY ? "http" : "ws",
            clients: perProcess,
            consumers: consumersPer,
            intervalMs: 1000,
            rampMs,
            seconds,
            partitions: 8,
          }, nice)),
      ),
  );
  const sends = results.reduce((n, r) => n + (r as unknown as { sends: number }).sends, 0);
  const errors = results.reduce((n, r) => n + r.errors, 0);
  const delivered = results.reduce((n, r) => n + r.records, 0);
  const hwm = procMemMiB(broker.pid, "VmHWM");
  const { steady, closing, all, thread } = crowdLatencies(samples);
  const total = processes * perProcess;
  report({
    suite: SUITE,
    name: `${total} connected clients (${processes * consumersPer} mod.ts consumers (${
      HTTP_ONLY ? "long polls" : "push subscriptions"
    }), the rest ${HTTP_ONLY ? "HTTP" : "WS"} producers at 1 record/s${
      niceText(nice)
    }): broker RSS`,
    value: maxRss,
    unit: `MiB (before ${fmt(rss0)} MiB, VmHWM ${fmt(hwm)} MiB), ${
      fmt(sends / (seconds + rampMs / 2000))
    } sends/s, ${
      fmt(delivered / (seconds + rampMs / 2000))
    } deliveries/s, ${errors} errors, broker ${
      fmt(cpuMs * 1000 / Math.max(1, sends))
    } µs/send, the client processes ${
      fmt(results.reduce((n, r) => n + r.cpuMs, 0) * 1000 / Math.max(1, sends))
    } µs/send, ${loadText()}`,
    target: "<= 500 MiB",
    met: maxRss <= 500,
  });
  const worst = steady[steady.length - 1];
  report({
    suite: SUITE,
    name: `${total} connected clients${niceText(nice)}: /healthz worst latency once all connected`,
    value: worst,
    unit: `ms (${latencyText(steady)}; broker ${thread}; while ${total} connected over ${
      rampMs / 1000
    } s: worst ${fmt(all[all.length - 1])} ms; while all disconnect: worst ${
      fmt(closing[closing.length - 1] ?? NaN)
    } ms; ${loadText()})`,
    target: "<= 50 ms",
    met: worst <= 50,
  });
  return total;
}

/**
 * The floor of the crowd: a bare Deno WebSocket server holding as many connections, spread
 * over as many partitions, doing the same fan-out (each producer's send appended in memory and
 * acknowledged, each consumer long-polling its partition and answered every record from its
 * offset, one answer built per offset), sampled alike.
 */
export async function crowdFloor(
  report: Reporter,
  floor: Floor,
  total: number,
  nice = 0,
): Promise<void> {
  const { processes, perProcess, consumersPer, rampMs, seconds } = CROWD;
  const rss0 = procMemMiB(floor.pid, "VmRSS");
  const { result: results, samples, maxRss, cpuMs } = await sampled(
    floor.pid,
    `${floor.url}/healthz`,
    () =>
      Promise.all(
        Array.from({ length: processes }, () =>
          worker({
            mode: "crowd-floor",
            url: floor.url,
            clients: perProcess,
            consumers: consumersPer,
            intervalMs: 1000,
            rampMs,
            seconds,
            partitions: 8,
          }, nice)),
      ),
  );
  const sends = results.reduce((n, r) => n + (r as unknown as { sends: number }).sends, 0);
  const delivered = results.reduce((n, r) => n + r.records, 0);
  const { steady, closing, all, thread } = crowdLatencies(samples);
  report({
    suite: SUITE,
    name: `${total} connected clients, WS fan-out floor (the same connections and partitions, ` +
      `consumers long-polling each send over bare WebSockets${niceText(nice)}): RSS`,
    value: maxRss,
    unit:
      `MiB (before ${fmt(rss0)} MiB), ${fmt(sends / (seconds + rampMs / 2000))} sends/s, ${
        fmt(delivered / (seconds + rampMs / 2000))
      } deliveries/s, server ${fmt(cpuMs * 1000 / Math.max(1, sends))} µs/send, the client ` +
      `processes ${
        fmt(results.reduce((n, r) => n + r.cpuMs, 0) * 1000 / Math.max(1, sends))
      } µs/send, ${loadText()}`,
  });
  report({
    suite: SUITE,
    name: `${total} connected clients, WS fan-out floor${
      niceText(nice)
    }: GET worst latency once all connected`,
    value: steady[steady.length - 1],
    unit: `ms (${latencyText(steady)}; floor server ${thread}; while connecting: worst ${
      fmt(all[all.length - 1])
    } ms; while all disconnect: worst ${
      fmt(closing[closing.length - 1] ?? NaN)
    } ms; ${loadText()})`,
  });
}
