/**
 * The script of the browser test's page (bundled for the browser by the test): produces to
 * the topic named `produce:<topic>:<count>` in the page's URL hash, if any (each send awaited,
 * over the client's WebSocket connection), then consumes the partitions named in it with the
 * mod.ts client and publishes what it read as `globalThis.rillResult` (or `rillError`).
 *
 * Hash: `#<broker URL>|produce:<topic>:<count>|<topic>:<count>|<topic>:<count>…`.
 *
 * @module
 */
import { Rill } from "../../mod.ts";

const [broker, ...parts] = decodeURIComponent(location.hash.slice(1)).split("|");
const g = globalThis as { rillResult?: unknown; rillError?: string };
try {
  const rill = new Rill({ brokers: [broker], clientId: "browser-test" });
  const produced: number[] = [];
  const wanted = parts.filter((p) => !p.startsWith("produce:"));
  for (const p of parts.filter((p) => p.startsWith("produce:"))) {
    const [, topic, count] = p.split(":");
    const producer = rill.producer({ acks: 1 });
    for (let i = 0; i < Number(count); i++) {
      const [meta] = await producer.send({ topic, messages: [{ value: `from the page ${i}` }] });
      produced.push(meta.offset);
    }
    await producer.disconnect();
  }
  const result: Record<string, { offset: number; key: string | null; value: string | null }[]> = {};
  for (const w of wanted) {
    const [topic, count] = w.split(":");
    const consumer = rill.consumer({ maxWaitMs: 500 });
    await consumer.assign([{ topic, partition: 0, offset: "earliest" }]);
    const got: { offset: number; key: string | null; value: string | null }[] = [];
    for await (const m of consumer) {
      got.push({ offset: m.offset, key: m.keyString(), value: m.valueString() });
      if (got.length >= Number(count)) break;
    }
    await consumer.disconnect();
    result[topic] = got;
  }
  g.rillResult = { userAgent: navigator.userAgent, result, produced };
} catch (e) {
  g.rillError = String((e as Error)?.stack ?? e);
}
