/**
 * Compression end to end against a real broker process: the mod.ts producer compresses
 * with each codec and the mod.ts consumer, the JSON fetch and `rill consume` read it back;
 * retries resend the same compressed bytes; batches made by kafkajs with its codecs (its
 * own gzip, kafkajs-snappy, and lz4/zstd codecs backed by the reference lz4 tool and
 * libzstd) are read by mod.ts, and batches mod.ts produced are read by kafkajs's decoder.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as zlib from "node:zlib";
import { RecordBatch as kafkajsRecordBatch } from "kafkajs/src/protocol/recordBatch/v0/index.js";
import kafkajsRecord from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
import kafkajsBatchDecoder from "kafkajs/src/protocol/recordBatch/v0/decoder.js";
import KafkajsDecoder from "kafkajs/src/protocol/decoder.js";
import KafkajsLong from "kafkajs/src/utils/long.js";
import { Codecs as kafkajsCodecs } from "kafkajs/src/protocol/message/compression/index.js";
import { CompressionTypes, Kafka, logLevel } from "kafkajs";
import SnappyCodec from "kafkajs-snappy";
import { type CompressionType, type ConsumedMessage, type FetchFn, Rill } from "../../mod.ts";
import { readBatchHeader, splitBatches } from "../../src/protocol/record_batch.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { cli } from "../_helpers/cli_in_process.ts";

const CODECS = ["gzip", "snappy", "lz4", "zstd"] as const;
const CODEC_ID = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
const td = new TextDecoder();

function haveTool(cmd: string): boolean {
  try {
    new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

/** Runs the reference lz4 tool on bytes (through files). */
async function lz4Tool(args: string[], input: Uint8Array): Promise<Buffer> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/in`, input);
    const out = await new Deno.Command("lz4", {
      args: [...args, "-c", `${dir}/in`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, td.decode(out.stderr));
    return Buffer.from(out.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// kafkajs's codec registry: gzip is built in; snappy from kafkajs-snappy (raw snappy out,
// xerial or raw in); lz4 by the reference lz4 tool (linked 64 KiB blocks, with checksums);
// zstd by libzstd (node:zlib), as @kafkajs/zstd (which needs a native build) would.
interface KafkajsEncoder {
  buffer: Buffer;
}
kafkajsCodecs[2] = SnappyCodec;
kafkajsCodecs[3] = () => ({
  compress: (encoder: KafkajsEncoder) => lz4Tool(["-BD", "-B4", "-BX"], encoder.buffer),
  decompress: (buffer: Buffer) => lz4Tool(["-d"], buffer),
});
kafkajsCodecs[4] = () => ({
  compress: (encoder: KafkajsEncoder) => Promise.resolve(zlib.zstdCompressSync(encoder.buffer)),
  decompress: (buffer: Buffer) => Promise.resolve(zlib.zstdDecompressSync(buffer)),
});

function logEvent(i: number): string {
  return JSON.stringify({
    ts: new Date(1_700_000_000_000 + i * 13).toISOString(),
    level: ["INFO", "WARN", "ERROR", "DEBUG"][i % 4],
    service: `checkout-${i % 9}`,
    http: { method: i % 3 ? "GET" : "POST", path: `/v1/orders/${i * 7}`, status: 200 },
    message: `order ${i} priced in ${(i * 31) % 700} ms`,
  });
}

async function take(consumer: AsyncIterable<ConsumedMessage>, n: number) {
  const out: ConsumedMessage[] = [];
  for await (const m of consumer) {
    out.push(m);
    if (out.length >= n) break;
  }
  return out;
}

/** The raw batches stored in a partition (one fetch). */
async function rawBatches(url: string, topic: string, partition = 0): Promise<Uint8Array[]> {
  const res = await fetch(
    `${url}/v1/topics/${topic}/partitions/${partition}/records?offset=0&maxBytes=8388608`,
    { headers: { accept: "application/vnd.rill.batch" } },
  );
  assert.equal(res.status, 200);
  return splitBatches(new Uint8Array(await res.arrayBuffer()));
}

Deno.test({
  name: "compression end to end against a broker process",
  ignore: !haveTool("lz4"),
  sanitizeOps: false, // kafkajs leaves timers behind after disconnect
  sanitizeResources: false,
  fn: async (t) => {
    await using broker = await startBroker();
    const rill = new Rill({ brokers: [broker.url], clientId: "compression-test" });
    const admin = rill.admin();

    await t.step(
      "mod.ts producer -> broker -> mod.ts consumer, JSON fetch, rill consume",
      async () => {
        for (const codec of CODECS) {
          const topic = `rt-${codec}`;
          await admin.createTopic({ topic, numPartitions: 2 });
          const producer = rill.producer({ compression: codec, lingerMs: 5 });
          const messages = Array.from({ length: 400 }, (_, i) => ({
            key: `k${i % 13}`,
            value: logEvent(i),
            headers: { seq: String(i) },
          }));
          const meta = await producer.send({ topic, messages });
          await producer.disconnect();
          // Stored compressed, with the codec's bits, smaller than the records.
          let stored = 0;
          for (const p of [0, 1]) {
            for (const b of await rawBatches(broker.url, topic, p)) {
              assert.equal(readBatchHeader(b).attributes & 7, CODEC_ID[codec], codec);
              stored += b.length;
            }
          }
          const raw = messages.reduce((n, m) => n + m.value.length + m.key.length, 0);
          assert.ok(stored < raw / 3, `${codec}: ${stored} bytes stored for ${raw}`);

          const consumer = rill.consumer({ maxWaitMs: 500 });
          await consumer.assign([0, 1].map((p) => ({ topic, partition: p, offset: "earliest" })));
          const got = await take(consumer, messages.length);
          await consumer.disconnect();
          const byPlace = new Map(got.map((m) => [`${m.partition}:${m.offset}`, m]));
          meta.forEach((md, i) => {
            const m = byPlace.get(`${md.partition}:${md.offset}`)!;
            assert.ok(m, `${codec} message ${i}`);
            assert.equal(m.keyString(), messages[i].key);
            assert.equal(m.valueString(), messages[i].value);
            assert.equal(m.headerString("seq"), String(i));
          });

          const p0 = meta.filter((m) => m.partition === 0);
          const json = await (await fetch(
            `${broker.url}/v1/topics/${topic}/partitions/0/records?offset=${p0[3].offset}`,
          )).json();
          assert.equal(json.records[0].offset, p0[3].offset);
          assert.equal(json.records[0].value, messages[meta.indexOf(p0[3])].value);

          const out = await cli(
            "consume",
            topic,
            "--partition",
            "0",
            "--from-beginning",
            "--max-messages",
            String(p0.length),
            "--broker",
            broker.url,
          );
          assert.equal(out.code, 0, out.err);
          const lines = out.out.trim().split("\n");
          assert.equal(lines.length, p0.length);
          assert.equal(lines[0], messages[meta.indexOf(p0[0])].value);
        }
      },
    );

    await t.step("a retry resends the very same compressed bytes", async () => {
      await admin.createTopic({ topic: "retry", numPartitions: 1 });
      const bodies: Uint8Array[] = [];
      const flaky: FetchFn = (input, init) => {
        if (init?.method === "POST" && String(input).includes("/records")) {
          bodies.push(new Uint8Array(init.body as Uint8Array));
          if (bodies.length === 1) return Promise.resolve(new Response(null, { status: 503 }));
        }
        return fetch(input, init);
      };
      const flakyRill = new Rill({ brokers: [broker.url], fetch: flaky });
      const producer = flakyRill.producer({ compression: "zstd" });
      await producer.send({
        topic: "retry",
        messages: Array.from({ length: 50 }, (_, i) => ({ value: logEvent(i) })),
      });
      await producer.disconnect();
      assert.equal(bodies.length, 2);
      assert.deepEqual(bodies[1], bodies[0]);
      assert.equal(readBatchHeader(bodies[0]).attributes & 7, 4);
      const stored = await rawBatches(broker.url, "retry");
      assert.equal(stored.length, 1, "stored once");
      assert.deepEqual(stored[0].subarray(12 + 9), bodies[0].subarray(12 + 9), "as sent");
    });

    await t.step("batches kafkajs compressed are read by mod.ts; ours by kafkajs", async () => {
      for (const codec of CODECS) {
        const topic = `kjs-${codec}`;
        await admin.createTopic({ topic, numPartitions: 1 });
        const values = Array.from({ length: 300 }, (_, i) => logEvent(i));
        const records = values.map((v, i) =>
          kafkajsRecord({
            key: Buffer.from(`key-${i % 7}`),
            value: Buffer.from(v),
            headers: { n: Buffer.from(String(i)) },
            offsetDelta: i,
            timestampDelta: i,
          })
        );
        const encoder = await kafkajsRecordBatch({
          compression: CODEC_ID[codec],
          firstOffset: KafkajsLong.fromInt(0),
          firstTimestamp: 1_700_000_000_000,
          maxTimestamp: 1_700_000_000_000 + 299,
          partitionLeaderEpoch: -1,
          producerId: KafkajsLong.fromInt(-1),
          producerEpoch: -1,
          firstSequence: -1,
          lastOffsetDelta: 299,
          records,
        });
        const res = await fetch(`${broker.url}/v1/topics/${topic}/records?partition=0`, {
          method: "POST",
          headers: { "content-type": "application/vnd.rill.batch" },
          body: new Uint8Array(encoder.buffer),
        });
        assert.equal(res.status, 200, `${codec}: ${await res.text()}`);
        const consumer = rill.consumer({ maxWaitMs: 500 });
        await consumer.assign([{ topic, partition: 0, offset: "earliest" }]);
        const got = await take(consumer, 300);
        await consumer.disconnect();
        assert.deepEqual(got.map((m) => m.valueString()), values, codec);
        assert.equal(got[5].keyString(), "key-5");
        assert.equal(got[5].headerString("n"), "5");
        assert.equal(got[5].timestamp, 1_700_000_000_005);

        // The other way: mod.ts compresses, kafkajs's decoder (with its codecs) reads.
        const producer = rill.producer({ compression: codec as CompressionType });
        await producer.send({
          topic,
          messages: values.slice(0, 120).map((v, i) => ({ key: `o${i}`, value: v })),
        });
        await producer.disconnect();
        const batches = await rawBatches(broker.url, topic);
        const ours = batches[batches.length - 1];
        assert.equal(readBatchHeader(ours).attributes & 7, CODEC_ID[codec]);
        const decoded = await kafkajsBatchDecoder(new KafkajsDecoder(Buffer.from(ours)));
        assert.equal(decoded.records.length, 120, codec);
        assert.deepEqual(
          decoded.records.map((r: { value: Buffer }) => r.value.toString()),
          values.slice(0, 120),
        );
        assert.equal(decoded.records[3].key.toString(), "o3");
      }
    });

    await t.step(
      "through the Kafka listener: kafkajs compresses, mod.ts reads; and back",
      async () => {
        assert.ok(broker.kafka, "the broker runs its Kafka listener");
        const kafka = new Kafka({
          clientId: "compression-test",
          brokers: [broker.kafka!],
          logLevel: logLevel.NOTHING,
          retry: { retries: 8, initialRetryTime: 100 },
        });
        const types = {
          gzip: CompressionTypes.GZIP,
          snappy: CompressionTypes.Snappy,
          lz4: CompressionTypes.LZ4,
          zstd: CompressionTypes.ZSTD,
        };
        const producer = kafka.producer();
        await producer.connect();
        for (const codec of CODECS) {
          const topic = `wire-${codec}`;
          await admin.createTopic({ topic, numPartitions: 1 });
          const values = Array.from({ length: 200 }, (_, i) => logEvent(i));
          await producer.send({
            topic,
            compression: types[codec],
            messages: values.map((value, i) => ({ key: `w${i}`, value, partition: 0 })),
          });
          const stored = await rawBatches(broker.url, topic);
          assert.ok(stored.length > 0);
          for (const b of stored) assert.equal(readBatchHeader(b).attributes & 7, CODEC_ID[codec]);
          const consumer = rill.consumer({ maxWaitMs: 500 });
          await consumer.assign([{ topic, partition: 0, offset: "earliest" }]);
          const got = await take(consumer, values.length);
          await consumer.disconnect();
          assert.deepEqual(got.map((m) => m.valueString()), values, codec);

          // mod.ts compresses, a kafkajs consumer reads through the listener.
          const ours = rill.producer({ compression: codec });
          await ours.send({ topic, messages: values.slice(0, 50).map((value) => ({ value })) });
          await ours.disconnect();
        }
        await producer.disconnect();
        const consumer = kafka.consumer({ groupId: "compression-readers" });
        await consumer.connect();
        for (const codec of CODECS) {
          await consumer.subscribe({ topic: `wire-${codec}`, fromBeginning: true });
        }
        const seen = new Map<string, string[]>();
        let total = 0;
        let done!: () => void;
        const all = new Promise<void>((r) => (done = r));
        await consumer.run({
          eachMessage: ({ topic, message }) => {
            const list = seen.get(topic) ?? [];
            list.push(message.value!.toString());
            seen.set(topic, list);
            if (++total === CODECS.length * 250) done();
            return Promise.resolve();
          },
        });
        await all;
        await consumer.disconnect();
        for (const codec of CODECS) {
          const values = Array.from({ length: 200 }, (_, i) => logEvent(i));
          assert.deepEqual(seen.get(`wire-${codec}`), [...values, ...values.slice(0, 50)], codec);
        }
      },
    );
  },
});
