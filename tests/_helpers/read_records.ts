/**
 * Reads a partition over HTTP, for tests that check what a broker stored.
 *
 * @module
 */
import assert from "node:assert/strict";

/** A record as the JSON fetch answer gives it. */
export interface FetchedRecord {
  offset: number;
  value: string;
}

/**
 * Every record of a partition below its high watermark, in offset order, fetched as JSON.
 *
 * @param broker the broker's URL
 * @param topic the topic
 * @param partition the partition
 * @returns the records
 * @example
 * ```ts
 * const records = await readPartition(broker.url, "orders", 0);
 * ```
 */
export async function readPartition(
  broker: string,
  topic: string,
  partition: number,
): Promise<FetchedRecord[]> {
  const out: FetchedRecord[] = [];
  let offset = 0;
  for (let i = 0; i < 10_000; i++) {
    const res = await fetch(
      `${broker}/v1/topics/${topic}/partitions/${partition}/records?offset=${offset}&maxBytes=1048576`,
    );
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    for (const r of body.records) if (r.offset >= offset) out.push(r);
    if (body.nextOffset >= body.highWatermark) return out;
    assert.ok(body.nextOffset > offset, "each fetch moves on");
    offset = body.nextOffset;
  }
  throw new Error("never reached the high watermark");
}
