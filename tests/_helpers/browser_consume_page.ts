/**
 * The script of the browser test's page (bundled for the browser by the test): consumes the
 * partitions named in the page's URL hash with the mod.ts client and publishes what it read
 * as `globalThis.rillResult` (or `rillError`).
 *
 * Hash: `#<broker URL>|<topic>:<count>|<topic>:<count>…`.
 *
 * @module
 */
import { Rill } from "../../mod.ts";

const [broker, ...wanted] = decodeURIComponent(location.hash.slice(1)).split("|");
const g = globalThis as { rillResult?: unknown; rillError?: string };
try {
  const rill = new Rill({ brokers: [broker], clientId: "browser-test" });
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
  g.rillResult = { userAgent: navigator.userAgent, result };
} catch (e) {
  g.rillError = String((e as Error)?.stack ?? e);
}
