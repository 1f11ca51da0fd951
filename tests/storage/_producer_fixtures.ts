/**
 * Helpers for idempotent producer tests: batches carrying producer fields, and reading the
 * producer fields of every batch of a log back.
 *
 * @module
 */
import { encodeBatch, readBatchHeader, splitBatches } from "../../src/protocol/record_batch.ts";
import type { PartitionLog } from "../../src/storage/mod.ts";

const encoder = new TextEncoder();

/** The identity of one idempotent batch. */
export interface IdemBatch {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  /** record count */
  count: number;
}

/**
 * An idempotent batch whose record values are `p<id>e<epoch>s<sequence>` per record.
 *
 * @param b producer fields and record count
 * @param timestamp every record's timestamp (default now, so that expiry does not bite)
 * @returns the encoded batch
 */
export function idemBatch(b: IdemBatch, timestamp = Date.now()): Uint8Array {
  return encodeBatch(
    Array.from({ length: b.count }, (_, i) => ({
      value: encoder.encode(`p${b.producerId}e${b.producerEpoch}s${b.baseSequence + i}`),
      timestamp,
    })),
    { producerId: b.producerId, producerEpoch: b.producerEpoch, baseSequence: b.baseSequence },
  );
}

/** The header fields of one batch read back. */
export interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

/**
 * Reads every batch of the log from its start, in order.
 *
 * @param log the log
 * @returns each batch's offsets and producer fields
 */
export async function storedBatches(log: PartitionLog): Promise<StoredBatch[]> {
  const out: StoredBatch[] = [];
  let offset = log.logStartOffset;
  for (let guard = 0; offset < log.logEndOffset && guard < 100_000; guard++) {
    const r = await log.read(offset, 1 << 20);
    for (const bytes of splitBatches(r.bytes)) {
      const h = readBatchHeader(bytes);
      if (h.baseOffset + h.lastOffsetDelta < offset) continue;
      out.push({
        baseOffset: h.baseOffset,
        lastOffset: h.baseOffset + h.lastOffsetDelta,
        producerId: h.producerId,
        producerEpoch: h.producerEpoch,
        baseSequence: h.baseSequence,
      });
    }
    if (r.nextOffset <= offset) throw new Error(`read(${offset}) made no progress`);
    offset = r.nextOffset;
  }
  return out;
}
