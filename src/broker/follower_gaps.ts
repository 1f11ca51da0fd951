/**
 * Offset gaps seen by a follower. A compacted leader log has gaps (`log_cleaner.ts` drops
 * batches left empty), but a follower's log takes only batches that follow on from its log
 * end offset. Before appending what it fetched, a follower fills each gap with an empty
 * batch (no records, no producer) whose offsets span the gap, as a compacted leader itself
 * keeps some; its own cleaner removes them later. Offsets, records and producer state are
 * the leader's. A filler takes the leader epoch of the batch before it (the removed records
 * came after that one), so that a new epoch starts where the leader's cache says; only
 * when a gap hides the start of an epoch does the follower's cache start it later, which
 * at worst makes a truncation cut the filler and fetch it again.
 *
 * @module
 */
import { crc32c } from "../protocol/crc32c.ts";
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, POS } from "../protocol/record_batch.ts";

function readI64(view: DataView, pos: number): number {
  return view.getInt32(pos) * 4294967296 + view.getUint32(pos + 4);
}

/** An empty batch over offsets [from, to], with the timestamp of the batch after it. */
function gapBatch(
  from: number,
  to: number,
  epoch: number,
  next: DataView,
  at: number,
): Uint8Array {
  const out = new Uint8Array(BATCH_HEADER_SIZE);
  const view = new DataView(out.buffer);
  view.setInt32(POS.baseOffset, Math.floor(from / 4294967296));
  view.setUint32(POS.baseOffset + 4, from >>> 0);
  view.setInt32(POS.batchLength, BATCH_HEADER_SIZE - LOG_OVERHEAD);
  view.setInt32(POS.partitionLeaderEpoch, epoch);
  out[POS.magic] = 2;
  view.setInt16(POS.attributes, 0);
  view.setInt32(POS.lastOffsetDelta, to - from);
  const ts = readI64(next, at + POS.maxTimestamp);
  for (const pos of [POS.baseTimestamp, POS.maxTimestamp]) {
    view.setInt32(pos, Math.floor(ts / 4294967296));
    view.setUint32(pos + 4, ts >>> 0);
  }
  view.setInt32(POS.producerId, -1);
  view.setInt32(POS.producerId + 4, -1);
  view.setInt16(POS.producerEpoch, -1);
  view.setInt32(POS.baseSequence, -1);
  view.setInt32(POS.recordCount, 0);
  view.setUint32(POS.crc, crc32c(out.subarray(POS.attributes)));
  return out;
}

/**
 * Fills the offset gaps before and between fetched batches with empty batches, so that
 * they follow on from `from`. Returns `batches` itself when there is no gap.
 *
 * @param batches whole batches fetched from the leader, the first starting at or after `from`
 * @param from the follower's log end offset
 * @param epoch the leader epoch of the follower's last batch (-1 if none)
 * @returns the batches, contiguous from `from`
 * @example
 * ```ts
 * const filled = fillOffsetGaps(bytes, log.logEndOffset, log.latestEpoch());
 * ```
 */
export function fillOffsetGaps(batches: Uint8Array, from: number, epoch = -1): Uint8Array {
  const view = new DataView(batches.buffer, batches.byteOffset, batches.byteLength);
  const parts: Uint8Array[] = [];
  let expected = from;
  let pos = 0;
  let start = 0;
  let total = 0;
  while (batches.length - pos >= BATCH_HEADER_SIZE) {
    const size = view.getInt32(pos + POS.batchLength) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE || pos + size > batches.length) break;
    const base = readI64(view, pos + POS.baseOffset);
    const nextEpoch = view.getInt32(pos + POS.partitionLeaderEpoch);
    if (base > expected) {
      parts.push(batches.subarray(start, pos));
      const gap = gapBatch(expected, base - 1, epoch < 0 ? nextEpoch : epoch, view, pos);
      parts.push(gap);
      total += gap.length;
      start = pos;
    }
    expected = base + view.getInt32(pos + POS.lastOffsetDelta) + 1;
    epoch = nextEpoch;
    pos += size;
  }
  if (parts.length === 0) return batches;
  parts.push(batches.subarray(start));
  const out = new Uint8Array(batches.length + total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
