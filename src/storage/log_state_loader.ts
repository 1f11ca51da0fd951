/**
 * Loading the state a partition log keeps beside its segments: the leader epoch cache
 * (`leader_epoch_cache.ts`) and the idempotent producer state (`producer_state.ts`), both
 * rebuilt where needed from the batch headers of the segments; and the lock that keeps a
 * log directory to one open log at a time.
 *
 * Costs: after a clean shutdown nothing is walked (the epoch checkpoint is read and the
 * producer snapshot at the log end loaded). After a crash, the batch headers from the
 * older of the recovery point and the last producer snapshot (the last roll) are walked.
 * A missing or damaged epoch checkpoint, or no producer snapshot at all, costs a walk of
 * every batch header of the log (no CRC; about one sequential read of the log for small
 * batches).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { joinPath, LOCK_FILE } from "./file_names.ts";
import { LeaderEpochCache } from "./leader_epoch_cache.ts";
import { ProducerStateManager, type ProducerStateTxn } from "./producer_state.ts";
import type { BatchHeaderFields } from "./segment.ts";
import type { LogSegments } from "./segments.ts";

/** Walks the batch headers of every segment from `from` to the log end. */
function walkLog(
  segments: LogSegments,
  from: number,
  visit: (batch: BatchHeaderFields) => void,
): void {
  for (let i = Math.max(0, segments.floorIndex(from)); i < segments.length; i++) {
    segments.at(i)!.walkHeaders(from, visit);
  }
}

/** Feeds an idempotent batch header to a producer state txn. */
function recordHeader(txn: ProducerStateTxn, h: BatchHeaderFields, now: number): void {
  if (h.producerId < 0 || h.baseSequence < 0) return;
  txn.record(
    {
      producerId: h.producerId,
      producerEpoch: h.producerEpoch,
      baseSequence: h.baseSequence,
      lastOffsetDelta: h.lastOffset - h.baseOffset,
    },
    h.baseOffset,
    h.maxTimestamp,
    now,
  );
}

/**
 * Loads the producer state: the newest intact snapshot at or below the log end offset,
 * then the batch headers after it (from the log start offset if there is no snapshot).
 * Snapshots outside [first segment's base offset, log end offset] are deleted.
 *
 * @param producers the state to replace
 * @param segments the log's segments
 * @param logStartOffset the log start offset
 * @param now the log's clock: producers found in the batch headers count as seen now
 * @param messages receives what was wrong, in words
 * @returns once the state is loaded
 */
export async function loadProducerState(
  producers: ProducerStateManager,
  segments: LogSegments,
  logStartOffset: number,
  now: number,
  messages: string[],
): Promise<void> {
  const logEndOffset = segments.last()!.nextOffset;
  await producers.deleteSnapshotsOutside(segments.first()!.baseOffset, logEndOffset);
  const { offset, problems } = await producers.loadLatestSnapshot(logEndOffset);
  messages.push(...problems);
  const from = offset ?? logStartOffset;
  if (from >= logEndOffset) return;
  const txn = producers.begin();
  walkLog(segments, from, (h) => recordHeader(txn, h, now));
  producers.commit(txn);
}

/**
 * Loads the leader epoch cache and the producer state of a just-loaded log.
 *
 * The epoch cache comes from its checkpoint, cut to [logStartOffset, logEndOffset), plus
 * the epochs of the batches the crash recovery scanned; a missing or damaged checkpoint is
 * rebuilt from every batch header of the log (and rewritten).
 *
 * @param dir the log directory
 * @param segments the loaded segments
 * @param logStartOffset the log start offset
 * @param recoveredFrom where the crash recovery scan began, or null after a clean shutdown
 * @param now the log's clock (ms)
 * @param messages receives what was wrong, in words
 * @returns the epoch cache and the producer state
 * @example
 * ```ts
 * const loaded = await loadLog(dir, config);
 * const messages: string[] = [];
 * const { epochs, producers } = await loadLogState(
 *   dir, loaded.segments, loaded.logStartOffset, loaded.recoveredFrom, Date.now(), messages);
 * ```
 */
export async function loadLogState(
  dir: string,
  segments: LogSegments,
  logStartOffset: number,
  recoveredFrom: number | null,
  now: number,
  messages: string[],
): Promise<{ epochs: LeaderEpochCache; producers: ProducerStateManager }> {
  const logEndOffset = segments.last()!.nextOffset;
  const { cache: epochs, problem } = await LeaderEpochCache.load(dir);
  let epochFrom = Infinity;
  let epochsChanged = false;
  if (problem !== undefined) {
    epochsChanged = true;
    if (logEndOffset > logStartOffset) {
      epochFrom = logStartOffset;
      messages.push(
        problem === "missing"
          ? "the leader-epoch checkpoint is missing; rebuilt from the batch headers"
          : `${problem}; rebuilt from the batch headers`,
      );
    }
  } else {
    epochsChanged = epochs.truncateFromEnd(logEndOffset);
    epochsChanged = epochs.truncateFromStart(logStartOffset) || epochsChanged;
    if (recoveredFrom !== null) epochFrom = Math.max(recoveredFrom, logStartOffset);
  }
  if (epochFrom < logEndOffset) {
    walkLog(segments, epochFrom, (h) => {
      if (h.baseOffset >= epochFrom && epochs.assign(h.partitionLeaderEpoch, h.baseOffset)) {
        epochsChanged = true;
      }
    });
  }
  if (epochsChanged) await epochs.flush();
  const producers = new ProducerStateManager(dir);
  await loadProducerState(producers, segments, logStartOffset, now, messages);
  return { epochs, producers };
}

/**
 * Takes the exclusive lock of a log directory (an `flock` on its `.lock` file, released
 * when the returned file is closed or the process dies).
 *
 * @param dir the log directory (must exist)
 * @returns the lock file, to close when the log closes
 * @throws {RillError} KAFKA_STORAGE_ERROR naming the directory if the lock is held (by
 *   this process or another)
 */
export function lockDir(dir: string): Deno.FsFile {
  const path = joinPath(dir, LOCK_FILE);
  const file = Deno.openSync(path, { read: true, write: true, create: true });
  let locked = false;
  try {
    locked = file.tryLockSync(true);
  } finally {
    if (!locked) file.close();
  }
  if (!locked) {
    throw new RillError(
      "KAFKA_STORAGE_ERROR",
      `Cannot open the log in "${dir}": it is already open (its lock file ${path} is held by this or another process)`,
      { dir },
    );
  }
  return file;
}

/**
 * Releases a lock taken by {@linkcode lockDir}: unlocks, then closes. Closing alone is not
 * enough: a `flock` belongs to the open file description, which a child process being
 * spawned by any thread holds a copy of until it execs, so the lock could outlive the close
 * by that moment and a reopen right after `close()` found the log "already open".
 *
 * @param lock the lock file
 * @example
 * ```ts
 * const lock = lockDir(dir);
 * unlockDir(lock);
 * ```
 */
export function unlockDir(lock: Deno.FsFile): void {
  try {
    lock.unlockSync();
  } finally {
    lock.close();
  }
}
