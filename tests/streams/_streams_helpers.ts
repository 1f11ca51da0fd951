/**
 * Helpers of the streams tests: produce lines, read a topic's latest value per key, wait
 * for a condition that has no event (bounded polling of a topic's contents).
 *
 * @module
 */
import { Rill } from "../../mod.ts";

/**
 * Every record of a topic (all partitions), in offset order per partition.
 *
 * @param broker the broker URL
 * @param topic the topic
 * @returns the records with partition, offset, key, value, timestamp and headers
 */
export async function readTopic(broker: string, topic: string) {
  const rill = new Rill({ brokers: [broker] });
  const admin = rill.admin();
  const out: {
    partition: number;
    offset: number;
    key: string | null;
    value: string | null;
    timestamp: number;
    headers: Record<string, string>;
  }[] = [];
  for (const p of await admin.fetchTopicOffsets(topic)) {
    let offset = p.low;
    for (let i = 0; offset < p.high && i < 100_000; i++) {
      const res = await fetch(
        `${broker}/v1/topics/${topic}/partitions/${p.partition}/records?offset=${offset}&maxBytes=4194304`,
      );
      const body = await res.json();
      if (!res.ok) throw new Error(JSON.stringify(body));
      for (const r of body.records) {
        if (r.offset >= offset && r.offset < p.high) out.push({ partition: p.partition, ...r });
      }
      if (body.nextOffset <= offset) break;
      offset = body.nextOffset;
    }
  }
  return out;
}

/**
 * The latest value per key of a topic (a table read from its updates).
 *
 * @param broker the broker URL
 * @param topic the topic
 * @returns key → latest value
 */
export async function latestPerKey(broker: string, topic: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const r of await readTopic(broker, topic)) {
    if (r.key !== null && r.value !== null) m.set(r.key, r.value);
  }
  return m;
}

/**
 * Polls `check` until it returns true (for conditions that have no event, like "the output
 * topic holds the final counts"); bounded by `timeoutMs`.
 *
 * @param check the condition
 * @param what described in the error
 * @param timeoutMs give up after this long
 */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Gave up waiting for ${what}`);
}

/**
 * Expected word counts of lines.
 *
 * @param lines the lines
 * @returns word → count
 */
export function countWords(lines: string[]): Map<string, string> {
  const m = new Map<string, number>();
  for (const l of lines) {
    for (const w of l.toLowerCase().split(/\W+/)) if (w) m.set(w, (m.get(w) ?? 0) + 1);
  }
  return new Map([...m].map(([k, v]) => [k, String(v)]));
}
