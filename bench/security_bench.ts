/**
 * Security benchmark: what authentication and TLS cost the producer. Three broker processes
 * in the same run — plain (auth off, HTTP), auth (API key, HTTP) and auth + TLS (HTTPS with
 * a certificate made by openssl) — driven by the client library's producer:
 *
 * - client producer, 1 KiB records (1 MiB batches, 16 sends of 1,000 in flight, acks=1):
 *   records/s per mode, ratio to plain (targets ≥ 0.85 with auth, ≥ 0.7 with auth + TLS).
 *   The TLS client speaks HTTP/1.1 (`Deno.createHttpClient({ caCerts, http2: false })`, as
 *   the CLI's `--ca-file` does); Deno's default HTTP/2 client is measured too ("h2": about
 *   the same rate for 1 MiB bodies, slower for small requests). Most of the TLS gap on
 *   loopback is Deno's, not Rill's: `fetch` leaves Nagle on (TCP_NODELAY 0) and a TLS
 *   connection writes records smaller than loopback's 64 KiB MSS, so the tail of a request
 *   can wait for the broker's delayed ACK (~40 ms); and `Deno.serve` decrypts on the
 *   broker's one JavaScript thread (it also chooses ALPN itself: h2 and http/1.1);
 * - single-record JSON produce requests, 8 clients (per-request overhead, where a bearer
 *   check weighs most): requests/s per mode, ratio to plain;
 * - the security layer alone: µs per single-record produce through `app.request` (no
 *   sockets) with auth off and on, interleaved — the least noisy view of its cost.
 *
 * Trustworthy figures on a noisy machine: the phases run in `RILL_BENCH_ROUNDS` (default 5)
 * interleaved rounds (forward, backward, …) after a short uncounted warm-up round (JIT,
 * connections); each producer phase writes to a fresh topic deleted after it (every phase
 * starts from an empty topic and none pays for the writeback of another's data), with a
 * `sync` before every phase. Each figure is the median over the rounds, each ratio the
 * median of the per-round ratios to plain. `RILL_BENCH_SECONDS` (default 3) sets the length
 * of each phase.
 *
 * @module
 */
import { interleaved, logRounds, median, pairedRatio, type Reporter, settle } from "./_report.ts";
import { Rill } from "../mod.ts";
import { Broker } from "../src/broker/broker.ts";
import { ApiKeyStore } from "../src/coordination/auth_keys.ts";
import { createApp } from "../src/http/app.ts";
import { type BrokerProcess, startBroker } from "../tests/_helpers/broker_process.ts";
import { makeCertificates } from "../tests/_helpers/tls_certificates.ts";

const SUITE = "security";
const SECONDS = Math.max(0.5, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3") || 3);
const ROUNDS = Math.max(1, Number(Deno.env.get("RILL_BENCH_ROUNDS") ?? "5") || 5);
const SEND_SIZE = 1000;
const SENDS_IN_FLIGHT = 16;
const CLIENTS = 8;

type Mode = "plain" | "auth" | "auth+tls" | "auth+tls h2";

interface Target {
  mode: Mode;
  broker: BrokerProcess;
  auth?: string;
  httpClient?: Deno.HttpClient;
}

async function adminKey(broker: BrokerProcess): Promise<string> {
  const kv = await Deno.openKv(`${broker.dataDir}/meta.kv`);
  try {
    return (await new ApiKeyStore(kv).bootstrap()).token;
  } finally {
    kv.close();
  }
}

function rillOf(t: Target): Rill {
  return new Rill({ brokers: [t.broker.url], auth: t.auth, httpClient: t.httpClient });
}

async function producerRate(t: Target, topic: string, seconds: number): Promise<number> {
  const producer = rillOf(t).producer({ batchBytes: 1 << 20 });
  const value = new Uint8Array(1024).map((_, i) => (i * 31) & 0xff);
  let acked = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const pending = new Set<Promise<void>>();
  while (performance.now() < end) {
    const messages = Array.from({ length: SEND_SIZE }, () => ({ value }));
    const p: Promise<void> = producer.send({ topic, messages, acks: 1 }).then((r) => {
      acked += r.length;
      pending.delete(p);
    });
    pending.add(p);
    if (pending.size >= SENDS_IN_FLIGHT) await Promise.race(pending);
  }
  await Promise.all(pending);
  const rate = acked / ((performance.now() - t0) / 1000);
  await producer.disconnect();
  return rate;
}

async function requestRate(t: Target, topic: string, seconds: number): Promise<number> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (t.auth) headers.authorization = `Bearer ${t.auth}`;
  const body = JSON.stringify({ records: [{ value: "x".repeat(100) }] });
  const init = { method: "POST", headers, body, client: t.httpClient } as RequestInit;
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (performance.now() < end) {
      const res = await fetch(`${t.broker.url}/v1/topics/${topic}/records?acks=1`, init);
      if (!res.ok) throw new Error(`${t.mode}: HTTP ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      n++;
    }
  }));
  return n / ((performance.now() - t0) / 1000);
}

/**
 * The cost of the security layer alone, without sockets: the same single-record produce
 * through `app.request` on one in-process broker with auth off and on, interleaved in
 * chunks so drift in machine load hits both alike.
 *
 * @returns µs per request with auth off and on
 */
async function inProcessCost(): Promise<{ off: number; on: number }> {
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-sec-app-" });
  const kv = await Deno.openKv(":memory:");
  const broker = await Broker.open({ id: 1, dataDir: dir, kv, log: () => {} });
  try {
    const token = (await new ApiKeyStore(kv).bootstrap()).token;
    const off = createApp(broker);
    const on = createApp(broker, { auth: true, audit: () => {} });
    await broker.createTopic({ name: "s" });
    const body = JSON.stringify({ records: [{ value: "x".repeat(100) }] });
    const send = async (app: typeof on, auth: boolean) => {
      const res = await app.request("/v1/topics/s/records?acks=1", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": String(body.length),
          ...(auth ? { authorization: `Bearer ${token}` } : {}),
        },
        body,
      });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    };
    await send(on, true); // the one PBKDF2, outside the timing
    let offMs = 0, onMs = 0, n = 0;
    const end = performance.now() + SECONDS * 1000;
    while (performance.now() < end) {
      let t0 = performance.now();
      for (let i = 0; i < 200; i++) await send(off, false);
      offMs += performance.now() - t0;
      t0 = performance.now();
      for (let i = 0; i < 200; i++) await send(on, true);
      onMs += performance.now() - t0;
      n += 200;
    }
    return { off: offMs * 1000 / n, on: onMs * 1000 / n };
  } finally {
    await broker.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs the suite.
 *
 * @param report receives each figure
 */
export async function run(report: Reporter): Promise<void> {
  const cost = await inProcessCost();
  report({
    suite: SUITE,
    name: "in-process single-record produce, auth off",
    value: cost.off,
    unit: "µs/request",
  });
  report({
    suite: SUITE,
    name: "in-process single-record produce, auth on (bearer key, ACL check)",
    value: cost.on,
    unit: "µs/request",
    ratio: cost.off / cost.on,
    baseline: "auth off (throughput ratio)",
  });
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-sec-" });
  const targets: Target[] = [];
  try {
    const pem = await makeCertificates(dir);
    const plain = await startBroker();
    targets.push({ mode: "plain", broker: plain });
    const auth = await startBroker({ extraArgs: ["--auth"] });
    targets.push({ mode: "auth", broker: auth, auth: await adminKey(auth) });
    const tls = await startBroker({
      extraArgs: ["--auth", "--tls-cert", pem.cert, "--tls-key", pem.key],
    });
    const caCerts = [await Deno.readTextFile(pem.ca)];
    const tlsKey = await adminKey(tls);
    // HTTP/1.1, as the CLI's --ca-file client; Deno's default HTTP/2 client is also measured.
    targets.push({
      mode: "auth+tls",
      broker: tls,
      auth: tlsKey,
      httpClient: Deno.createHttpClient({ caCerts, http2: false }),
    });
    targets.push({
      mode: "auth+tls h2",
      broker: tls,
      auth: tlsKey,
      httpClient: Deno.createHttpClient({ caCerts }),
    });
    for (const t of targets.slice(0, 3)) {
      await rillOf(t).admin().createTopic({ topic: "small", numPartitions: 1 });
    }
    // A producer phase writes to a fresh topic, deleted (with its data) after it.
    const freshTopic = async (t: Target, round: number, fn: (topic: string) => Promise<number>) => {
      const admin = rillOf(t).admin();
      const topic = `p1k-${targets.indexOf(t)}-${round}`;
      await admin.createTopic({ topic, numPartitions: 4 });
      try {
        return await fn(topic);
      } finally {
        await admin.deleteTopic(topic);
      }
    };
    const seconds = (round: number) => round < 0 ? Math.min(1, SECONDS) : SECONDS; // warm-up: 1 s
    const phases: Record<string, (round: number) => Promise<number>> = {};
    // Phases of one kind side by side, so each is measured close in time to its plain one.
    for (const t of targets) {
      phases[`producer ${t.mode}`] = (r) =>
        freshTopic(t, r, (topic) => producerRate(t, topic, seconds(r)));
    }
    for (const t of targets) {
      phases[`requests ${t.mode}`] = (r) => requestRate(t, "small", seconds(r));
    }
    const results = await interleaved(ROUNDS, phases, settle);
    logRounds(SUITE, results);
    const targetsOf: Record<Mode, number | undefined> = {
      plain: undefined,
      auth: 0.85,
      "auth+tls": 0.7,
      "auth+tls h2": undefined,
    };
    for (
      const [kind, unit, label] of [
        ["producer", "records/s", "client producer, 1 KiB records, acks=1"],
        ["requests", "requests/s", `single-record JSON produce, ${CLIENTS} clients`],
      ] as const
    ) {
      const base = results[`${kind} plain`];
      for (const t of targets) {
        const rounds = results[`${kind} ${t.mode}`];
        const value = median(rounds);
        const ratio = pairedRatio(rounds, base);
        const goal = targetsOf[t.mode];
        report({
          suite: SUITE,
          name: `${label}, ${t.mode}`,
          value,
          unit,
          ...(t.mode === "plain" ? {} : {
            ratio,
            baseline: `${kind} plain`,
            ...(kind === "producer" && goal !== undefined
              ? { target: `>= ${goal} of plain`, met: ratio >= goal }
              : {}),
          }),
        });
      }
    }
  } finally {
    for (const t of targets) t.httpClient?.close();
    for (const b of new Set(targets.map((t) => t.broker))) await b[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
}
