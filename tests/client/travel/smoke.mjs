// Produce (zstd-compressed) → consume through the Rill client, as a user outside the repository would run it.
// Plain JavaScript that runs unchanged in Node and Deno; the import of mod.ts is replaced by
// the test that copies it (a file URL of mod.ts, or the npm package's name).
import { Rill } from "../../../mod.ts";

const url = globalThis.Deno ? globalThis.Deno.args[0] : globalThis.process.argv[2];
const topic = `travel-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
const rill = new Rill({ brokers: [url], clientId: "travel" });
await rill.admin().createTopics({ topics: [{ topic, numPartitions: 2 }] });

// zstd: compressing loads libzstd as WebAssembly, consuming decodes with pure JavaScript.
const producer = rill.producer({ compression: "zstd" });
const sent = await producer.send({
  topic,
  messages: Array.from({ length: 6 }, (_, i) => ({
    key: `k${i}`,
    value: JSON.stringify({ i }),
    headers: { n: String(i) },
  })),
});
await producer.disconnect();

const consumer = rill.consumer({ maxWaitMs: 500 });
await consumer.assign([0, 1].map((partition) => ({ topic, partition, offset: "earliest" })));
const got = [];
for await (const m of consumer) {
  got.push({ key: m.keyString(), value: m.json(), n: m.headerString("n"), offset: m.offset });
  if (got.length === sent.length) break;
}
got.sort((a, b) => a.key.localeCompare(b.key));
console.log(JSON.stringify({ sent: sent.length, got }));
