/**
 * `deno task bench browser`: a real Chromium tab producing while it consumes a 12-partition
 * topic (issue 17). Chromium allows 6 HTTP/1.1 connections per host, so a consumer holding
 * one long poll per partition starves the same tab's produce requests; one long poll per
 * broker (a fetch session) leaves room for them.
 *
 * Debian's Chromium (headless, playwright-core) loads a page served over plain HTTP/1.1 by
 * this process; the page loads the client's browser build (`deno task package`,
 * `browser/rill.js`) and the broker is a spawned process on another port (so another host
 * as far as the connection limit goes: 6 connections for all the tab's requests to it).
 * The page assigns all 12 partitions from "latest" and then sends one 100-byte record at a
 * time (acks=1, one every {@linkcode GAP_MS} ms, the partitions in turn) to the topic it
 * consumes, timing each `send()`. Shapes, each in a fresh tab:
 *
 * - `no consumer, http`: the floor (produce latency with nothing consumed);
 * - `sessions, http` (the headline: transport forced to HTTP, as in issue 17);
 * - `sessions, ws` (the browser client's default transport);
 * - `per-partition polls, http` (`fetchSessions: false`: the client before issue 17).
 *
 * Rounds alternate the order (A B C D, D C B A, …); latencies are pooled over rounds. Each
 * shape sends at most {@linkcode SENDS} records a round (after {@linkcode WARMUP_SENDS}
 * untimed ones), and stops earlier after `RILL_BENCH_SECONDS` × 4 s (default 12 s), so
 * per-partition polling ends by itself: a send still waiting then is counted with the time
 * it waited so far (a lower bound, said in the figure's name), and that shape has no warm-up. The
 * page checks that it consumed every record it produced. The protocol Chromium used to
 * the broker is read through the DevTools protocol (Network.responseReceived) and printed.
 *
 * @module
 */
import type { Page } from "playwright-core";
import { logRounds, median, type Reporter } from "./_report.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { launchChromium } from "../tests/_helpers/console_tour.ts";
import { buildPackage } from "../.ci/build_package.ts";
import { Rill } from "../mod.ts";

const SUITE = "browser";
const SECONDS = Math.max(1, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3") || 3);
const ROUNDS = 3;
const PARTITIONS = 12;
const SENDS = 250;
/**
 * untimed sends first: two to each partition, so Chromium has cached the CORS preflight of
 * every partition's produce URL (and the connections are open) before timing starts
 */
const WARMUP_SENDS = 2 * PARTITIONS;
const GAP_MS = 10;

type Shape = "floor" | "http" | "ws" | "partition";
const SHAPES: Record<Shape, { label: string; transport: "http" | "ws"; consume: string }> = {
  floor: { label: "no consumer, http", transport: "http", consume: "none" },
  http: { label: "sessions, http", transport: "http", consume: "session" },
  ws: { label: "sessions, ws", transport: "ws", consume: "session" },
  partition: { label: "per-partition polls, http", transport: "http", consume: "partition" },
};

/** The page's script: consumes the topic and times sends; result in `#out`. */
const APP = `import { Rill } from "/rill.js";
const q = new URLSearchParams(location.search);
const out = document.getElementById("out");
const topic = q.get("topic");
const partitions = Number(q.get("partitions"));
const sends = Number(q.get("sends"));
const warmup = Number(q.get("warmup"));
const gapMs = Number(q.get("gap"));
const deadline = performance.now() + Number(q.get("ms"));
try {
  const rill = new Rill({ brokers: [q.get("broker")], transport: q.get("transport") });
  let consumed = 0;
  let consumer = null;
  if (q.get("consume") !== "none") {
    consumer = rill.consumer({ maxWaitMs: 500, fetchSessions: q.get("consume") === "session" });
    await consumer.assign(Array.from({ length: partitions }, (_, p) => ({ topic, partition: p, offset: "latest" })));
    await consumer.run({ eachBatch: ({ batch }) => { consumed += batch.messages.length; } });
  }
  const producer = rill.producer({ lingerMs: 0, acks: 1 });
  const value = "x".repeat(100);
  const latencies = [];
  let produced = 0;
  let unfinished = 0;
  for (let i = 0; i < warmup + sends && performance.now() < deadline; i++) {
    const t0 = performance.now();
    const sent = producer.send({ topic, messages: [{ value, partition: i % partitions }] });
    let timer;
    const late = new Promise((r) => (timer = setTimeout(() => r("late"), deadline - t0)));
    const r = await Promise.race([sent, late]);
    clearTimeout(timer);
    const ms = performance.now() - t0;
    if (r === "late") {
      // Still waiting at the deadline: counted with the time it waited so far (a lower bound).
      latencies.push(ms);
      unfinished++;
      await sent;
      produced++;
      break;
    }
    produced++;
    if (i >= warmup) latencies.push(ms);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  // Every record produced reaches the consumer (bounded wait).
  const until = performance.now() + 10000;
  while (consumer && consumed < produced && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
  out.textContent = JSON.stringify({ latencies, unfinished, produced, consumed: consumer ? consumed : null });
  await producer.disconnect();
  if (consumer) await consumer.disconnect();
} catch (e) {
  out.textContent = "error: " + (e && e.stack || e);
}
out.dataset.done = "1";`;

const PAGE = `<!doctype html><meta charset="utf-8"><title>rill browser bench</title>
<pre id="out">running</pre><script type="module" src="/app.js"></script>`;

interface TabResult {
  latencies: number[];
  /** sends still waiting at the deadline (their latency is a lower bound) */
  unfinished: number;
  produced: number;
  consumed: number | null;
  protocols: Set<string>;
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function runTab(
  page: Page,
  pageUrl: string,
  brokerUrl: string,
  topic: string,
  shape: Shape,
): Promise<TabResult> {
  const { transport, consume } = SHAPES[shape];
  const protocols = new Set<string>();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.responseReceived", (e) => {
    if (e.response.url.startsWith(brokerUrl) && e.response.protocol) {
      protocols.add(e.response.protocol);
    }
  });
  const q = new URLSearchParams({
    broker: brokerUrl,
    topic,
    transport,
    consume,
    partitions: String(PARTITIONS),
    sends: String(SENDS),
    // Per-partition polling takes seconds a send: no warm-up, every send timed.
    warmup: String(shape === "partition" ? 0 : WARMUP_SENDS),
    gap: String(GAP_MS),
    ms: String(SECONDS * 4000),
  });
  await page.goto(`${pageUrl}?${q}`);
  await page.locator("#out[data-done]").waitFor({ timeout: SECONDS * 4000 + 60_000 });
  const text = (await page.locator("#out").textContent()) ?? "";
  if (!text.startsWith("{")) throw new Error(`browser bench page (${shape}): ${text}`);
  const r = JSON.parse(text) as Omit<TabResult, "protocols">;
  await cdp.detach();
  return { ...r, protocols };
}

/**
 * Runs the suite.
 *
 * @param report receives the figures
 */
export async function run(report: Reporter): Promise<void> {
  const dist = await Deno.makeTempDir({ prefix: "rill-browser-bench-" });
  try {
    const { dir } = await buildPackage(dist, false);
    const bundle = await Deno.readFile(`${dir}/browser/rill.js`);
    await using broker = await startBroker();
    const topic = "browser12";
    await new Rill({ brokers: [broker.url] }).admin().createTopic({
      topic,
      numPartitions: PARTITIONS,
    });
    await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/") return new Response(PAGE, { headers: { "content-type": "text/html" } });
      if (path === "/app.js") {
        return new Response(APP, { headers: { "content-type": "text/javascript" } });
      }
      if (path === "/rill.js") {
        return new Response(bundle, { headers: { "content-type": "text/javascript" } });
      }
      return new Response("not found", { status: 404 });
    });
    const pageUrl = `http://127.0.0.1:${server.addr.port}/`;
    const browser = await launchChromium();
    const latencies: Record<Shape, number[]> = { floor: [], http: [], ws: [], partition: [] };
    const p99s: Record<Shape, number[]> = { floor: [], http: [], ws: [], partition: [] };
    const unfinished: Record<Shape, number> = { floor: 0, http: 0, ws: 0, partition: 0 };
    const protocols = new Set<string>();
    try {
      const order = Object.keys(SHAPES) as Shape[];
      for (let round = 0; round < ROUNDS; round++) {
        for (const shape of round % 2 === 0 ? order : [...order].reverse()) {
          const context = await browser.newContext();
          const page = await context.newPage();
          try {
            const r = await runTab(page, pageUrl, broker.url, topic, shape);
            if (r.consumed !== null && r.consumed < r.produced) {
              throw new Error(
                `browser bench (${shape}): consumed ${r.consumed} of ${r.produced} records produced`,
              );
            }
            latencies[shape].push(...r.latencies);
            unfinished[shape] += r.unfinished;
            p99s[shape].push(percentile(r.latencies, 99));
            if (SHAPES[shape].transport === "http") {
              for (const p of r.protocols) protocols.add(p);
            }
            console.error(
              `${SUITE}: ${shape} round ${round}: ${r.latencies.length} sends timed ` +
                `(${r.unfinished} unfinished at the deadline), ` +
                `${r.produced} produced, consumed ${r.consumed ?? "-"}, protocols ${
                  [
                    ...r.protocols,
                  ].join(",")
                }`,
            );
          } finally {
            await context.close();
          }
        }
      }
    } finally {
      await browser.close();
    }
    logRounds(
      SUITE,
      Object.fromEntries(
        (Object.keys(SHAPES) as Shape[]).map((s) => [`${SHAPES[s].label} produce p99 ms`, p99s[s]]),
      ),
    );
    console.error(`${SUITE}: HTTP protocols Chromium used to the broker: ${[...protocols]}`);
    const floorP99 = percentile(latencies.floor, 99);
    for (const shape of Object.keys(SHAPES) as Shape[]) {
      const xs = latencies[shape];
      const label = `${SHAPES[shape].label}, ${PARTITIONS} partitions consumed`;
      const name = shape === "floor"
        ? `produce from a tab, ${SHAPES[shape].label} (floor)`
        : `produce from a tab, ${label}`;
      report({ suite: SUITE, name: `${name}: p50`, value: median(xs), unit: "ms" });
      const p99 = percentile(xs, 99);
      const late = unfinished[shape] > 0
        ? `, ${unfinished[shape]} still waiting at the deadline: a lower bound`
        : "";
      report({
        suite: SUITE,
        name: `${name}: p99 (${xs.length} sends${late})`,
        value: p99,
        unit: "ms",
        ...(shape === "floor" ? {} : { ratio: p99 / floorP99, baseline: "no-consumer p99" }),
        ...(shape === "http" ? { target: "<= 50 ms", met: p99 <= 50 } : {}),
      });
    }
  } finally {
    await Deno.remove(dist, { recursive: true });
  }
}
