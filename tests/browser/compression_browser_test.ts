/**
 * A page in headless Chromium (Debian's chromium, driven by playwright-core) consumes zstd
 * and lz4 batches from a broker process with the mod.ts client, bundled for the browser
 * with `deno bundle`: the portable codecs (fzstd, lz4js) decode in a real browser. The page
 * also produces single records over the browser's WebSocket (binary produce frames).
 *
 * Needs /usr/bin/chromium (.ci/run installs it); without it the test fails and says so.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { Rill } from "../../mod.ts";
import { readBatchHeader, splitBatches } from "../../src/protocol/record_batch.ts";
import { startBroker } from "../_helpers/broker_process.ts";

const CHROMIUM = "/usr/bin/chromium";
const PAGE_SCRIPT = new URL("../_helpers/browser_consume_page.ts", import.meta.url).pathname;

function event(i: number): string {
  return JSON.stringify({
    ts: new Date(1_700_000_000_000 + i * 11).toISOString(),
    level: ["INFO", "WARN", "ERROR"][i % 3],
    service: `edge-${i % 5}`,
    message: `served ${i} in ${(i * 17) % 300} ms, ünïcödé ✓`,
  });
}

Deno.test("a browser page consumes zstd and lz4 batches and produces over WebSocket with the mod.ts client", async () => {
  const chromiumThere = await Deno.stat(CHROMIUM).then(() => true, () => false);
  assert.ok(chromiumThere, `${CHROMIUM} is missing: apt-get install chromium (see .ci/run)`);

  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  const admin = rill.admin();
  const counts = { zstd: 600, lz4: 500 } as const;
  for (const codec of ["zstd", "lz4"] as const) {
    const topic = `browser-${codec}`;
    await admin.createTopic({ topic, numPartitions: 1 });
    const producer = rill.producer({ compression: codec, lingerMs: 5 });
    await producer.send({
      topic,
      messages: Array.from({ length: counts[codec] }, (_, i) => ({
        key: `k${i}`,
        value: event(i),
      })),
    });
    await producer.disconnect();
    const res = await fetch(`${broker.url}/v1/topics/${topic}/partitions/0/records?offset=0`, {
      headers: { accept: "application/vnd.rill.batch" },
    });
    const batches = splitBatches(new Uint8Array(await res.arrayBuffer()));
    assert.ok(batches.length > 0);
    for (const b of batches) {
      assert.equal(
        readBatchHeader(b).attributes & 7,
        codec === "zstd" ? 4 : 3,
        "stored compressed",
      );
    }
  }

  await admin.createTopic({ topic: "browser-produced", numPartitions: 1 });
  const wsProduces = async () => {
    const text = await (await fetch(`${broker.url}/metrics`)).text();
    const line = text.split("\n").find((l) =>
      l.startsWith("rill_requests_total{") && l.includes('api="ws"') &&
      l.includes('route="produce"') && l.includes('status="200"')
    );
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
  };
  const producesBefore = await wsProduces();

  // The page: the client bundled for browsers, served from another origin (CORS).
  const dir = await Deno.makeTempDir({ prefix: "rill-browser-" });
  const bundled = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "browser", "-o", `${dir}/page.js`, PAGE_SCRIPT],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(bundled.code, 0, new TextDecoder().decode(bundled.stderr));
  const script = await Deno.readFile(`${dir}/page.js`);
  const html = `<!doctype html><meta charset="utf-8"><title>rill</title>` +
    `<script type="module" src="/page.js"></script>`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/page.js") {
      return new Response(script, { headers: { "content-type": "text/javascript" } });
    }
    return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  try {
    const page = await browser.newPage();
    const hash = encodeURIComponent(
      [
        broker.url,
        "produce:browser-produced:5",
        `browser-zstd:${counts.zstd}`,
        `browser-lz4:${counts.lz4}`,
      ].join("|"),
    );
    await page.goto(`http://127.0.0.1:${server.addr.port}/#${hash}`);
    await page.waitForFunction(
      () => {
        const g = globalThis as { rillResult?: unknown; rillError?: string };
        return g.rillResult !== undefined || g.rillError !== undefined;
      },
      undefined,
      { timeout: 60_000 },
    );
    const error = await page.evaluate(() => (globalThis as { rillError?: string }).rillError);
    assert.equal(error, undefined, `the page failed: ${error}`);
    const { userAgent, result, produced } = await page.evaluate(() =>
      (globalThis as unknown as {
        rillResult: {
          userAgent: string;
          result: Record<string, { offset: number; key: string; value: string }[]>;
          produced: number[];
        };
      }).rillResult
    );
    assert.match(userAgent, /Chrome\//);
    // The page's sends went over its WebSocket connection, each acknowledged with its offset.
    assert.deepEqual(produced, [0, 1, 2, 3, 4]);
    assert.equal(await wsProduces() - producesBefore, 5);
    const stored = await fetch(
      `${broker.url}/v1/topics/browser-produced/partitions/0/records?offset=0`,
    ).then((r) => r.json());
    assert.deepEqual(
      stored.records.map((r: { value: string }) => r.value),
      [0, 1, 2, 3, 4].map((i) => `from the page ${i}`),
    );
    for (const codec of ["zstd", "lz4"] as const) {
      const got = result[`browser-${codec}`];
      assert.equal(got.length, counts[codec], codec);
      got.forEach((m, i) => {
        assert.equal(m.offset, i);
        assert.equal(m.key, `k${i}`);
        assert.equal(m.value, event(i));
      });
    }
  } finally {
    await browser.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
