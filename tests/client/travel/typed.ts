// Type-checked with `tsc --strict --noEmit` against the package's .d.ts files.
import { type ConsumedMessage, Rill, RillError } from "@rill/client";

const rill: Rill = new Rill({ brokers: ["http://127.0.0.1:8092"], clientId: "typed" });
export async function roundTrip(topic: string): Promise<string | null> {
  const producer = rill.producer({ lingerMs: 5 });
  const [meta] = await producer.send({ topic, messages: [{ key: "k", value: "v" }] });
  const offset: number = meta.offset;
  const consumer = rill.consumer({ maxWaitMs: 100 });
  await consumer.assign([{ topic, partition: meta.partition, offset }]);
  for await (const m of consumer) {
    const message: ConsumedMessage = m;
    return message.valueString();
  }
  return null;
}
export const isRetriable = (e: unknown): boolean => e instanceof RillError && e.retriable;
