/**
 * Hostile-input benchmark (issue 14, D1/D2): what one legal-size JSON produce costs a broker
 * process and the clients it serves meanwhile.
 *
 * - a body of N empty records (`{"records":[{"value":""},…]}`, 7.5 MB, under the 8 MiB
 *   request limit), and one of 100,000 (the most a request may hold), each sent once and 4 at
 *   once: the request's time and answer, the longest
 *   `/healthz` answer while it ran (polled back to back), the broker's RSS before, at its peak
 *   and 2 s after; the baseline is the same figures for a same-size body of 1 KiB records
 *   (7,000 records), sent in the same run;
 * - `POST /v1/topics` with 8 MB of empty JSON objects (a control-plane body under the request
 *   limit): request time and longest `/healthz` answer;
 * - a 5 MB JSON produce of 100-byte records: the largest batch stored (against the topic's
 *   `max.message.bytes`), and the size of a JSON fetch answer with `maxBytes=1048576`.
 *
 * `RILL_HOSTILE_RECORDS` (default 576,922) sets N.
 *
 * @module
 */
import type { Reporter } from "./_report.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { readBatchHeader, splitBatches } from "../src/protocol/record_batch.ts";

const SUITE = "hostile";
const N = Number(Deno.env.get("RILL_HOSTILE_RECORDS") ?? "576922");

async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Run {
  ms: number;
  statuses: number[];
  healthzMaxMs: number;
  healthzCount: number;
  rssPeak: number;
}

/** Sends `bodies` at once while polling /healthz and RSS until all are answered. */
function during(url: string, pid: number, bodies: string[]): Promise<Run> {
  return duringPost(url, pid, "/v1/topics/h/records?acks=1", ...bodies);
}

/** POSTs `bodies` to `path` at once while polling /healthz and RSS until all are answered. */
async function duringPost(
  url: string,
  pid: number,
  path: string,
  ...bodies: string[]
): Promise<Run> {
  let done = false;
  let healthzMaxMs = 0;
  let healthzCount = 0;
  let rssPeak = await rssMiB(pid);
  const poll = (async () => {
    while (!done) {
      const t = performance.now();
      const res = await fetch(`${url}/healthz`);
      await res.arrayBuffer();
      healthzMaxMs = Math.max(healthzMaxMs, performance.now() - t);
      healthzCount++;
    }
  })();
  const rss = (async () => {
    while (!done) {
      rssPeak = Math.max(rssPeak, await rssMiB(pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const t = performance.now();
  const statuses = await Promise.all(bodies.map(async (body) => {
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    await res.arrayBuffer();
    return res.status;
  }));
  const ms = performance.now() - t;
  done = true;
  await Promise.all([poll, rss]);
  return { ms, statuses, healthzMaxMs, healthzCount, rssPeak };
}

function reportRun(report: Reporter, label: string, run: Run, base: Run, before: number) {
  report({
    suite: SUITE,
    name: `${label}: request time (answers ${[...new Set(run.statuses)].join(",")})`,
    value: run.ms,
    unit: "ms",
    ratio: run.ms / base.ms,
    baseline: "same-size body of 1 KiB records",
  });
  report({
    suite: SUITE,
    name: `${label}: longest /healthz answer during it (${run.healthzCount} polls)`,
    value: run.healthzMaxMs,
    unit: "ms",
    ratio: run.healthzMaxMs / base.healthzMaxMs,
    baseline: "same-size body of 1 KiB records",
  });
  report({
    suite: SUITE,
    name: `${label}: broker peak RSS (before: ${before.toFixed(0)} MiB)`,
    value: run.rssPeak,
    unit: "MiB",
    ratio: (run.rssPeak - before) / Math.max(1, base.rssPeak - before),
    baseline: "growth of the same-size body of 1 KiB records",
  });
}

/**
 * Runs the suite.
 *
 * @param report receives the figures
 */
export async function run(report: Reporter): Promise<void> {
  await using broker = await startBroker();
  const url = broker.url;
  const created = await fetch(`${url}/v1/topics`, {
    method: "POST",
    body: JSON.stringify({ name: "h", partitions: 1 }),
    headers: { "content-type": "application/json" },
  });
  await created.arrayBuffer();

  const hostile = '{"records":[' + new Array(N).fill('{"value":""}').join(",") + "]}";
  const kib = "x".repeat(1024);
  const normalCount = Math.floor(hostile.length / (kib.length + 14));
  const normal = '{"records":[' + new Array(normalCount).fill(`{"value":"${kib}"}`).join(",") +
    "]}";
  console.error(
    `hostile body ${(hostile.length / 1e6).toFixed(2)} MB (${N} records), baseline ${
      (normal.length / 1e6).toFixed(2)
    } MB (${normalCount} records)`,
  );

  // The most records a request may hold (BrokerConfig.maxRequestRecords): accepted.
  const atLimit = '{"records":[' + new Array(100_000).fill('{"value":""}').join(",") + "]}";

  const before = await rssMiB(broker.pid);
  const base1 = await during(url, broker.pid, [normal]);
  const one = await during(url, broker.pid, [hostile]);
  reportRun(report, `1 JSON produce of ${N} empty records`, one, base1, before);
  const oneAtLimit = await during(url, broker.pid, [atLimit]);
  reportRun(report, `1 JSON produce of 100,000 empty records`, oneAtLimit, base1, before);
  const base4 = await during(url, broker.pid, [normal, normal, normal, normal]);
  const four = await during(url, broker.pid, [hostile, hostile, hostile, hostile]);
  reportRun(report, `4 JSON produces of ${N} empty records at once`, four, base4, before);
  const fourAtLimit = await during(url, broker.pid, [atLimit, atLimit, atLimit, atLimit]);
  reportRun(report, `4 JSON produces of 100,000 empty records at once`, fourAtLimit, base4, before);
  await new Promise((r) => setTimeout(r, 2000));
  report({
    suite: SUITE,
    name: "broker RSS 2 s after the hostile produces",
    value: await rssMiB(broker.pid),
    unit: "MiB",
    baseline: `before: ${before.toFixed(0)} MiB`,
  });

  // A control-plane JSON body of empty objects (POST /v1/topics), under the request limit.
  const objects = `{"name":"objects","configs":{"x":[${
    new Array(2_700_000).fill("{}").join(",")
  }]}}`;
  const ctl = await duringPost(url, broker.pid, "/v1/topics", objects);
  report({
    suite: SUITE,
    name: `POST /v1/topics with ${
      (objects.length / 1e6).toFixed(1)
    } MB of empty objects: request time (answer ${ctl.statuses[0]})`,
    value: ctl.ms,
    unit: "ms",
    ratio: ctl.ms / base1.ms,
    baseline: "JSON produce of a same-size body of 1 KiB records",
  });
  report({
    suite: SUITE,
    name:
      `POST /v1/topics with empty objects: longest /healthz answer during it (${ctl.healthzCount} polls)`,
    value: ctl.healthzMaxMs,
    unit: "ms",
    ratio: ctl.healthzMaxMs / base1.healthzMaxMs,
    baseline: "JSON produce of a same-size body of 1 KiB records",
  });

  // D2: batch sizes of a JSON produce, and a JSON fetch's answer size.
  const created2 = await fetch(`${url}/v1/topics`, {
    method: "POST",
    body: JSON.stringify({ name: "sizes", partitions: 1 }),
    headers: { "content-type": "application/json" },
  });
  await created2.arrayBuffer();
  const v100 = "y".repeat(100);
  const count = 50_000;
  const body = '{"records":[' + new Array(count).fill(`{"value":"${v100}"}`).join(",") + "]}";
  const res = await fetch(`${url}/v1/topics/sizes/records?acks=1`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
  });
  await res.arrayBuffer();
  let largest = 0;
  let batches = 0;
  for (let offset = 0; offset < count;) {
    const raw = await fetch(
      `${url}/v1/topics/sizes/partitions/0/records?offset=${offset}&maxBytes=1`,
      { headers: { accept: "application/vnd.rill.batch" } },
    );
    const bytes = new Uint8Array(await raw.arrayBuffer());
    const next = Number(raw.headers.get("rill-next-offset"));
    for (const b of splitBatches(bytes)) {
      largest = Math.max(largest, b.length);
      batches++;
      readBatchHeader(b);
    }
    if (next <= offset) break;
    offset = next;
  }
  report({
    suite: SUITE,
    name:
      `largest batch stored by one JSON produce of ${count} 100-byte records (${batches} batches, answer ${res.status})`,
    value: largest,
    unit: "bytes",
    ratio: largest / 1048588,
    baseline: "max.message.bytes 1,048,588",
  });
  const json = await fetch(`${url}/v1/topics/sizes/partitions/0/records?offset=0&maxBytes=1048576`);
  const jsonBytes = (await json.arrayBuffer()).byteLength;
  report({
    suite: SUITE,
    name: "JSON fetch answer with maxBytes=1048576",
    value: jsonBytes,
    unit: "bytes",
    ratio: jsonBytes / 1048576,
    baseline: "maxBytes",
  });
}
