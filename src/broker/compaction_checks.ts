/**
 * The produce-time rule of compacted topics (`cleanup.policy` with `compact`): every record
 * needs a key, since compaction keeps the latest record *per key* (Kafka's broker rejects a
 * keyless record with INVALID_RECORD, "Compacted topic cannot accept message without key").
 * Checked before anything is appended, so a refused request appends nothing.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { POS } from "../protocol/record_batch.ts";
import { varintCursor, zigZagAt } from "../protocol/varint.ts";

function keyless(topic: string, which: string): RillError {
  return new RillError(
    "INVALID_RECORD",
    `Compacted topic "${topic}" accepts only records with a key; ${which} has none`,
  );
}

/**
 * Checks that every JSON-born record of a produce request has a key.
 *
 * @param topic the topic (for the message)
 * @param records the records, in request order
 * @throws {RillError} INVALID_RECORD naming the first record without a key
 * @example
 * ```ts
 * if (state.compacted) checkRecordKeys("users", records);
 * ```
 */
export function checkRecordKeys(
  topic: string,
  records: readonly { key: Uint8Array | null }[],
): void {
  for (let i = 0; i < records.length; i++) {
    if (records[i].key === null) throw keyless(topic, `record ${i}`);
  }
}

/** Reads a zig-zag varint (the batches were checked by `checkProducedBatches`). */
function varint(buf: Uint8Array, pos: number): number {
  try {
    return zigZagAt(buf, pos, buf.length);
  } catch {
    throw new RillError("CORRUPT_MESSAGE", "A record has a malformed varint");
  }
}

/**
 * Checks that every record of some uncompressed batches (already checked by
 * `checkProducedBatches`) has a key: a walk over each record's length and key length, no
 * allocation.
 *
 * @param topic the topic (for the message)
 * @param batches the whole batches of the request
 * @throws {RillError} INVALID_RECORD naming the first record without a key
 * @example
 * ```ts
 * const checked = checkProducedBatches(body, state.maxMessageBytes);
 * if (state.compacted) checkBatchKeys("users", checked.batches);
 * ```
 */
export function checkBatchKeys(topic: string, batches: readonly Uint8Array[]): void {
  for (let b = 0; b < batches.length; b++) {
    const batch = batches[b];
    const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    const count = view.getInt32(POS.recordCount);
    let pos: number = POS.records;
    for (let i = 0; i < count; i++) {
      const len = varint(batch, pos);
      const end = varintCursor.next + len;
      varint(batch, varintCursor.next + 1); // after the attributes: the timestamp delta
      varint(batch, varintCursor.next); // offset delta
      if (varint(batch, varintCursor.next) < 0) throw keyless(topic, `record ${i} of batch ${b}`);
      pos = end;
    }
  }
}
