/**
 * Deletion at the start of a partition log: deleting records before an offset (the log
 * start offset advances), and applying retention.ms / retention.bytes to whole closed
 * segments, oldest first (with producer expiry).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { syncDir } from "./checkpoint.ts";
import { LOG_START_OFFSET_CHECKPOINT } from "./file_names.ts";
import type { LogState } from "./log_state.ts";
import type { LogWriter } from "./log_writer.ts";
import { DEFAULT_PRODUCER_ID_EXPIRATION_MS } from "./producer_state.ts";

/**
 * Advances the log start offset to `offset` and deletes the segments wholly below it.
 *
 * @param offset the new log start offset
 * @throws {RillError} OFFSET_OUT_OF_RANGE if offset > logEndOffset
 */
export function deleteRecordsBefore(
  state: LogState,
  writer: LogWriter,
  offset: number,
): Promise<void> {
  return writer.exclusive(async () => {
    state.checkOpen();
    const end = state.logEndOffset;
    if (!Number.isSafeInteger(offset) || offset > end) {
      throw new RillError(
        "OFFSET_OUT_OF_RANGE",
        `Cannot delete records before offset ${offset} of "${state.name}": log end offset is ${end}`,
        { logStartOffset: state.logStartOffset, logEndOffset: end },
      );
    }
    if (offset <= state.logStartOffset) return;
    state.logStartOffset = offset;
    await state.writeCheckpoint(LOG_START_OFFSET_CHECKPOINT, () => state.logStartOffset);
    if (offset === end) state.roll();
    let count = 0;
    while (
      count < state.segments.length - 1 && state.segments.at(count + 1)!.baseOffset <= offset
    ) {
      count++;
    }
    await deleteOldest(state, count);
  });
}

/**
 * Applies retention.ms and retention.bytes to whole closed segments (never the active one),
 * oldest first, advancing the log start offset; also forgets producers idle for longer
 * than producerIdExpirationMs.
 *
 * @returns how many segments were deleted
 */
export function applyRetention(state: LogState, writer: LogWriter): Promise<number> {
  let deleted = 0;
  return writer.exclusive(async () => {
    state.checkOpen();
    state.producers.removeExpired(
      state.now(),
      state.config.producerIdExpirationMs ?? DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    );
    const closed = state.segments.length - 1;
    let count = 0;
    if (state.config.retentionMs >= 0) {
      const cutoff = state.now() - state.config.retentionMs;
      while (count < closed && state.segments.at(count)!.maxTimestamp < cutoff) count++;
    }
    if (state.config.retentionBytes >= 0) {
      let total = state.size;
      for (let i = 0; i < count; i++) total -= state.segments.at(i)!.size;
      while (
        count < closed && total - state.segments.at(count)!.size >= state.config.retentionBytes
      ) {
        total -= state.segments.at(count)!.size;
        count++;
      }
    }
    if (count === 0) return;
    const newStart = state.segments.at(count)!.baseOffset;
    if (newStart > state.logStartOffset) {
      state.logStartOffset = newStart;
      await state.writeCheckpoint(LOG_START_OFFSET_CHECKPOINT, () => state.logStartOffset);
    }
    await deleteOldest(state, count);
    deleted = count;
  }).then(() => deleted);
}

/**
 * Deletes the `count` oldest segments, then moves the leader epoch cache's start to the
 * log start offset and deletes the producer snapshots below the first segment left (the
 * producers' state itself stays, as Kafka's since KIP-360; expiry forgets them).
 */
export async function deleteOldest(state: LogState, count: number): Promise<void> {
  if (count > 0) {
    await state.flushChain;
    for (const s of state.segments.removeFirst(count)) s.delete();
    state.updateClosedSize();
    await syncDir(state.dir);
  }
  if (state.epochs.truncateFromStart(state.logStartOffset)) await state.epochs.flush();
  if (count > 0) {
    await state.snapshotChain;
    await state.producers.deleteSnapshotsOutside(
      state.segments.first()!.baseOffset,
      state.logEndOffset,
    );
  }
}
