/**
 * A real Prometheus (Debian's `prometheus`, installed by .ci/run) scrapes a real broker
 * process every second; the test produces at a steady pace and commits a group offset, then
 * asks Prometheus's HTTP API for `rate(rill_topic_in_bytes_total[…])`, the byte counter and
 * the group lag series, and checks them against what it produced and committed.
 *
 * Without the `prometheus` binary the test is reported as ignored, with a line saying why.
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";

const PROMETHEUS = await (async () => {
  for (const p of ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]) {
    try {
      if ((await Deno.stat(p)).isFile) return p;
    } catch { /* not here */ }
  }
  return null;
})();
if (PROMETHEUS === null) {
  console.error(
    "prometheus_test: the prometheus binary is missing (apt-get install prometheus): IGNORED",
  );
}

/** A port free right now (bound on port 0, then released) for Prometheus's own listener. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(base: string, expr: string, time?: number): Promise<PromSample[]> {
  const params = new URLSearchParams({ query: expr });
  if (time !== undefined) params.set("time", String(time));
  const res = await fetch(`${base}/api/v1/query?${params}`);
  const body = await res.json();
  assert.equal(body.status, "success", JSON.stringify(body));
  return body.data.result;
}

/** Polls Prometheus (it scrapes every second) until `check` accepts the answer; 30 s at most. */
async function until(
  base: string,
  expr: string,
  check: (r: PromSample[]) => boolean,
): Promise<PromSample[]> {
  const deadline = Date.now() + 30_000;
  let last: PromSample[] = [];
  while (Date.now() < deadline) {
    try {
      last = await query(base, expr);
      if (check(last)) return last;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Prometheus never answered as expected to ${expr}: ${JSON.stringify(last)}`);
}

Deno.test({
  name: "Prometheus scrapes a broker: byte rate, byte count and group lag match what was done",
  ignore: PROMETHEUS === null,
  async fn() {
    await using broker = await startBroker();
    await using dir = await tempDir("rill-prom-");
    const target = new URL(broker.url).host;
    await Deno.writeTextFile(
      `${dir.path}/prometheus.yml`,
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n` +
        `  - job_name: rill\n    static_configs:\n      - targets: ["${target}"]\n`,
    );
    const port = freePort();
    const prom = new Deno.Command(PROMETHEUS!, {
      args: [
        `--config.file=${dir.path}/prometheus.yml`,
        `--storage.tsdb.path=${dir.path}/tsdb`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const promErr = new Response(prom.stderr).text();
    const base = `http://127.0.0.1:${port}`;
    try {
      const topic = "metered";
      const created = await fetch(`${broker.url}/v1/topics`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: topic, partitions: 1 }),
      });
      assert.equal(created.status, 201, await created.text());
      // Prometheus sees the broker before the traffic starts.
      await until(base, `up{job="rill"}`, (r) => r.length === 1 && r[0].value[1] === "1");

      // 40 batches of 10 records of 1000 bytes, one every 200 ms: a steady ~50 KB/s.
      const batches = 40;
      const paceMs = 200;
      let bytes = 0;
      const startS = Date.now() / 1000;
      for (let i = 0; i < batches; i++) {
        const batch = encodeBatch(
          Array.from({ length: 10 }, (_, j) => ({
            key: new TextEncoder().encode(`k${j}`),
            value: new Uint8Array(1000).fill(i),
          })),
        );
        bytes += batch.length;
        const res = await fetch(`${broker.url}/v1/topics/${topic}/records?partition=0&acks=1`, {
          method: "POST",
          headers: { "content-type": "application/vnd.rill.batch" },
          body: batch as Uint8Array<ArrayBuffer>,
        });
        assert.equal(res.status, 200, await res.text());
        const next = startS * 1000 + (i + 1) * paceMs;
        await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
      }
      const endS = Date.now() / 1000;
      const records = batches * 10;

      // The counter Prometheus stored is exactly the bytes sent.
      const series = `rill_topic_in_bytes_total{job="rill",topic="${topic}"}`;
      await until(base, series, (r) => r.length === 1 && Number(r[0].value[1]) === bytes);
      await until(
        base,
        `rill_topic_in_records_total{topic="${topic}"}`,
        (r) => r.length === 1 && Number(r[0].value[1]) === records,
      );

      // The rate over a window inside the production run is the pace at which it produced.
      const expected = bytes / (endS - startS);
      const mid = (startS + endS) / 2 + 1;
      const [rate] = await query(base, `rate(${series}[4s])`, mid);
      assert.ok(rate, "Prometheus has a rate for the window");
      const ratio = Number(rate.value[1]) / expected;
      assert.ok(
        ratio > 0.6 && ratio < 1.5,
        `rate ${rate.value[1]} B/s against ${expected.toFixed(0)} B/s produced (ratio ${ratio})`,
      );

      // A group commits offset 150 of 400: the lag series says 250.
      const committed = await fetch(`${broker.url}/v1/groups/billing/offsets`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ offsets: [{ topic, partition: 0, offset: 150 }] }),
      });
      assert.equal(committed.status, 200, await committed.text());
      const [lag] = await until(
        base,
        `rill_group_lag_records{group="billing",topic="${topic}",partition="0"}`,
        (r) => r.length === 1 && Number(r[0].value[1]) === records - 150,
      );
      assert.equal(lag.metric.job, "rill");
      // And the broker's own view of the partition agrees.
      await until(
        base,
        `rill_partition_high_watermark{topic="${topic}",partition="0"}`,
        (r) => r.length === 1 && Number(r[0].value[1]) === records,
      );
    } catch (e) {
      prom.kill("SIGKILL");
      console.error(`prometheus stderr:\n${(await promErr).slice(-3000)}`);
      throw e;
    } finally {
      try {
        prom.kill("SIGTERM");
      } catch { /* exited */ }
      await prom.status;
      await promErr;
    }
  },
});
