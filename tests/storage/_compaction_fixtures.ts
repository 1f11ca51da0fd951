/**
 * Helpers for compaction tests: keyed batches, and reading a log back as keyed records
 * (checking each batch's CRC-32C, not its record count: a compacted batch keeps its
 * lastOffsetDelta with fewer records).
 *
 * @module
 */
import { crc32c } from "../../src/protocol/crc32c.ts";
import { decodeBatch, encodeBatch, POS, splitBatches } from "../../src/protocol/record_batch.ts";
import type { PartitionLog } from "../../src/storage/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A keyed record read back (value null: a tombstone). */
export interface KeyedRecord {
  offset: number;
  key: string | null;
  value: string | null;
}

/**
 * A batch of keyed records (a null value is a tombstone, a null key a keyless record).
 *
 * @param records key and value of each record
 * @param timestamp every record's timestamp
 * @returns the batch
 */
export function keyedBatch(
  records: { key: string | null; value: string | null }[],
  timestamp = 1_700_000_000_000,
): Uint8Array {
  return encodeBatch(records.map((r) => ({
    key: r.key === null ? null : encoder.encode(r.key),
    value: r.value === null ? null : encoder.encode(r.value),
    timestamp,
  })));
}

/**
 * Decodes whole batches into keyed records, checking each CRC.
 *
 * @param bytes whole batches
 * @returns the records, in order
 */
export function keyedRecordsOf(bytes: Uint8Array): KeyedRecord[] {
  const out: KeyedRecord[] = [];
  for (const b of splitBatches(bytes)) {
    const stored = new DataView(b.buffer, b.byteOffset + POS.crc, 4).getUint32(0);
    if (crc32c(b.subarray(POS.attributes)) !== stored) throw new Error("a batch fails its CRC");
    for (const r of decodeBatch(b).records) {
      out.push({
        offset: r.offset,
        key: r.key === null ? null : decoder.decode(r.key),
        value: r.value === null ? null : decoder.decode(r.value),
      });
    }
  }
  return out;
}

/**
 * Reads every record from the log start to the log end, following nextOffset.
 *
 * @param log the log
 * @param maxBytes bytes per read
 * @returns the records
 */
export async function readKeyed(log: PartitionLog, maxBytes = 1024): Promise<KeyedRecord[]> {
  const out: KeyedRecord[] = [];
  let offset = log.logStartOffset;
  for (let guard = 0; offset < log.logEndOffset && guard < 1_000_000; guard++) {
    const r = await log.read(offset, maxBytes);
    if (r.nextOffset <= offset) throw new Error(`read(${offset}) made no progress`);
    for (const rec of keyedRecordsOf(r.bytes)) if (rec.offset >= offset) out.push(rec);
    offset = r.nextOffset;
  }
  return out;
}

/**
 * What compaction must leave of `appended` (every record, in offset order) when everything
 * below `cleanEnd` was compacted: below it, each key's last record there (tombstones kept
 * unless `dropTombstones`), keyless records dropped; from it on, everything.
 *
 * @param appended every record appended
 * @param cleanEnd the end of the compacted part
 * @param dropTombstones whether expired tombstones were removed
 * @returns the records expected
 */
export function compactedModel(
  appended: KeyedRecord[],
  cleanEnd: number,
  dropTombstones = false,
): KeyedRecord[] {
  const last = new Map<string, number>();
  for (const r of appended) if (r.offset < cleanEnd && r.key !== null) last.set(r.key, r.offset);
  return appended.filter((r) =>
    r.offset >= cleanEnd ||
    (r.key !== null && last.get(r.key) === r.offset && !(dropTombstones && r.value === null))
  );
}
