/**
 * Truncation of a partition log: removing the records at and after an offset (a follower
 * whose log diverged from its leader's), and restarting the log empty at an offset
 * (Kafka's truncateFullyAndStartAt), with the leader epoch cache, producer state,
 * checkpoints and cleaner checkpoint brought into line.
 *
 * @module
 */
import { syncDir } from "./checkpoint.ts";
import { LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT } from "./file_names.ts";
import { lowerCleanerCheckpoint } from "./log_compaction.ts";
import { loadProducerState } from "./log_state_loader.ts";
import type { LogState } from "./log_state.ts";
import type { LogWriter } from "./log_writer.ts";
import { LogSegment } from "./segment.ts";

/**
 * Removes every record at and after `offset`. The cut is made at a batch boundary: if
 * `offset` falls inside a batch, that whole batch goes too (the log end offset becomes its
 * base offset). If the cut would fall at or below the log start offset, the log is emptied
 * and restarts at the log start offset; below the log start offset, it restarts at
 * `offset` (as Kafka's truncateFullyAndStartAt).
 *
 * The leader epoch cache loses the entries starting at or after the new log end offset;
 * the producer state is reloaded from the newest snapshot at or below it plus the batch
 * headers after that (snapshots above it are deleted). A full restart clears both.
 *
 * @param offset the first offset to remove
 */
export function truncateTo(state: LogState, writer: LogWriter, offset: number): Promise<void> {
  return writer.exclusive(async () => {
    state.checkOpen();
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`Cannot truncate "${state.name}" to offset ${offset}`);
    }
    if (offset >= state.logEndOffset) return;
    await state.flushChain;
    let restartAt: number | null = null;
    if (offset < state.logStartOffset) restartAt = offset;
    else {
      const segment = state.segments.floor(offset)!;
      const cut = segment.locate(offset)?.baseOffset ?? segment.nextOffset;
      if (cut <= state.logStartOffset) restartAt = state.logStartOffset;
    }
    await state.snapshotChain;
    if (restartAt !== null) {
      await restartLogAt(state, restartAt);
      return;
    }
    const segment = state.segments.floor(offset)!;
    for (const s of state.segments.removeFrom(segment.baseOffset + 1)) s.delete();
    segment.truncateTo(offset);
    await syncDir(state.dir);
    state.updateClosedSize();
    state.recoveryPoint = Math.min(state.recoveryPoint, state.logEndOffset);
    await state.writeCheckpoint(RECOVERY_POINT_CHECKPOINT, () => state.recoveryPoint);
    await state.writeCheckpoint(LOG_START_OFFSET_CHECKPOINT, () => state.logStartOffset);
    state.epochs.truncateFromEnd(state.logEndOffset);
    await state.epochs.flush();
    await lowerCleanerCheckpoint(state, state.logEndOffset);
    await loadProducerState(
      state.producers,
      state.segments,
      state.logStartOffset,
      state.now(),
      [],
    );
  });
}

/**
 * Deletes every segment and restarts the log, empty, at `offset` (Kafka's
 * `truncateFullyAndStartAt`): a follower whose log end offset is below the leader's log
 * start offset (the leader's retention deleted what it lacks) does this, then fetches from
 * `offset`. Afterwards logStartOffset = logEndOffset = recoveryPoint = `offset`, the active
 * segment is a new empty one with base offset `offset`, the leader epoch cache and the
 * producer state are empty (their checkpoint and snapshots rewritten or deleted), and the
 * recovery point and log start offset checkpoints say `offset`, so that a crash right
 * after leaves a log that reopens at `offset`. `offset` may be below, at or above the
 * current log end offset.
 *
 * @param offset the new log start (and end) offset
 * @returns once the log has restarted and the checkpoints are written
 * @throws {RangeError} if `offset` is not a non-negative safe integer
 * @example
 * ```ts
 * await log.truncateFullyAndStartAt(leaderLogStartOffset);
 * ```
 */
export function truncateFullyAndStartAt(
  state: LogState,
  writer: LogWriter,
  offset: number,
): Promise<void> {
  return writer.exclusive(async () => {
    state.checkOpen();
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`Cannot restart "${state.name}" at offset ${offset}`);
    }
    await state.flushChain;
    await state.snapshotChain;
    await restartLogAt(state, offset);
  });
}

/**
 * Deletes every segment, creates an empty active segment at `offset` and resets the
 * offsets, checkpoints, leader epoch cache and producer state to match. Runs inside an
 * exclusive operation, after the flush and snapshot chains have settled.
 */
export async function restartLogAt(state: LogState, offset: number): Promise<void> {
  for (const s of state.segments.removeFirst(state.segments.length)) s.delete();
  state.segments.add(LogSegment.create(state.dir, offset, state.config));
  state.logStartOffset = offset;
  state.updateClosedSize();
  state.recoveryPoint = offset;
  await state.writeCheckpoint(RECOVERY_POINT_CHECKPOINT, () => state.recoveryPoint);
  await state.writeCheckpoint(LOG_START_OFFSET_CHECKPOINT, () => state.logStartOffset);
  state.epochs.clear();
  await state.epochs.flush();
  state.producers.clear();
  await state.producers.deleteSnapshotsOutside(Infinity, -1);
  await lowerCleanerCheckpoint(state, offset);
}
