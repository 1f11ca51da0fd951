/**
 * Names of the files in a partition log directory, as Kafka names them.
 *
 * A log directory holds, per segment, `<baseOffset as 20 digits>.log` (the batches),
 * `.index` (offset index) and `.timeindex` (time index); plus the per-log checkpoint files
 * `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` and
 * `leader-epoch-checkpoint`, producer state snapshots `<offset as 20 digits>.snapshot`, the
 * clean-shutdown marker `.clean-shutdown` and the lock file `.lock` (held with an exclusive
 * `flock` while a process has the log open). Files ending in `.tmp` are half-written
 * checkpoints or snapshots, removed on open.
 *
 * @module
 */

/** Suffix of segment data files. */
export const LOG_SUFFIX = ".log";
/** Suffix of offset index files. */
export const INDEX_SUFFIX = ".index";
/** Suffix of time index files. */
export const TIME_INDEX_SUFFIX = ".timeindex";
/** Suffix of files being written before an atomic rename. */
export const TMP_SUFFIX = ".tmp";
/** The recovery point checkpoint: every offset below it is known flushed to disk. */
export const RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint";
/** The log start offset checkpoint: offsets below it were deleted. */
export const LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint";
/** The leader epoch cache's checkpoint (see `leader_epoch_cache.ts`). */
export const LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint";
/** Suffix of producer state snapshots (see `producer_state.ts`). */
export const SNAPSHOT_SUFFIX = ".snapshot";
/** Locked exclusively by the process that has the log open. */
export const LOCK_FILE = ".lock";
/** Present only while the log is closed cleanly. */
export const CLEAN_SHUTDOWN_MARKER = ".clean-shutdown";

/**
 * Formats a base offset as the 20-digit, zero-padded stem of a segment's file names.
 *
 * @param baseOffset a non-negative safe integer
 * @returns e.g. "00000000000000000042"
 * @example
 * ```ts
 * offsetToFileStem(42); // "00000000000000000042"
 * ```
 */
export function offsetToFileStem(baseOffset: number): string {
  return String(baseOffset).padStart(20, "0");
}

/**
 * Joins a directory and a file name.
 *
 * @param dir the directory
 * @param name the file name
 * @returns the path
 */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * The path of a segment's file.
 *
 * @param dir the log directory
 * @param baseOffset the segment's base offset
 * @param suffix LOG_SUFFIX, INDEX_SUFFIX or TIME_INDEX_SUFFIX
 * @returns the path
 */
export function segmentFilePath(dir: string, baseOffset: number, suffix: string): string {
  return joinPath(dir, offsetToFileStem(baseOffset) + suffix);
}

/**
 * Parses a segment file name into its base offset and suffix.
 *
 * @param name a file name such as "00000000000000000042.index"
 * @returns the base offset and suffix, or null if the name is not a segment file
 */
export function parseSegmentFileName(
  name: string,
): { baseOffset: number; suffix: string } | null {
  const m = /^(\d{20})(\.log|\.index|\.timeindex)$/.exec(name);
  if (!m) return null;
  const baseOffset = Number(m[1]);
  if (!Number.isSafeInteger(baseOffset)) return null;
  return { baseOffset, suffix: m[2] };
}

/**
 * The file name of the producer state snapshot taken at `offset`.
 *
 * @param offset the log end offset the snapshot covers
 * @returns e.g. "00000000000000000042.snapshot"
 */
export function snapshotFileName(offset: number): string {
  return offsetToFileStem(offset) + SNAPSHOT_SUFFIX;
}

/**
 * Parses a producer state snapshot's file name.
 *
 * @param name a file name such as "00000000000000000042.snapshot"
 * @returns the offset it was taken at, or null if the name is not a snapshot's
 */
export function parseSnapshotFileName(name: string): number | null {
  const m = /^(\d{20})\.snapshot$/.exec(name);
  if (!m) return null;
  const offset = Number(m[1]);
  return Number.isSafeInteger(offset) ? offset : null;
}
