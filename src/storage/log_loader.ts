/**
 * Opening a partition log directory (Kafka's `LogLoader`): list the segments, read the
 * checkpoints, and recover what a crash may have left half-written.
 *
 * - After a clean shutdown (the `.clean-shutdown` marker is present) nothing is scanned:
 *   the active segment's indexes are loaded and its end found from its last index entry
 *   (a walk over at most about one index interval of batch headers).
 * - After a crash, only the segments holding offsets at or past the recovery point are
 *   recovered ({@linkcode LogSegment.recover}): batches from the recovery point on are
 *   checked (length, magic, offsets, CRC-32C), a torn or corrupt tail is cut, and if the
 *   cut falls in a segment that is not the last, every later segment is deleted too (their
 *   offsets would no longer follow on).
 * - Index files that are missing or whose size is not a whole number of entries are rebuilt
 *   at once; other damage (entries out of order or past the log) is found and repaired when
 *   a segment's indexes are first loaded.
 * - Leftover `.tmp` files and index files without a `.log` are removed.
 * - What an interrupted compaction left (`.cleaned`, `.swap`, `.deleted` files) is finished
 *   or removed first ({@linkcode recoverCleanerLeftovers} in `log_cleaner.ts`).
 *
 * @module
 */
import { readCheckpoint } from "./checkpoint.ts";
import { recoverCleanerLeftovers } from "./log_cleaner.ts";
import {
  CLEAN_SHUTDOWN_MARKER,
  joinPath,
  LOG_START_OFFSET_CHECKPOINT,
  LOG_SUFFIX,
  parseSegmentFileName,
  RECOVERY_POINT_CHECKPOINT,
  segmentFilePath,
  TMP_SUFFIX,
} from "./file_names.ts";
import { OFFSET_INDEX_ENTRY_SIZE } from "./offset_index.ts";
import { LogSegment, type SegmentSettings } from "./segment.ts";
import { LogSegments } from "./segments.ts";
import { TIME_INDEX_ENTRY_SIZE } from "./time_index.ts";

/** What opening a log found and did. */
export interface RecoveryReport {
  /** whether the log had been closed cleanly (nothing needed scanning) */
  clean: boolean;
  /** bytes whose CRC was checked */
  scannedBytes: number;
  /** bytes removed (a torn or corrupt tail, and any segments after it) */
  truncatedBytes: number;
  /** how many segments had their indexes rebuilt */
  rebuiltIndexes: number;
  /** what was wrong, in words, if anything */
  message?: string;
}

/** A loaded log, ready for a PartitionLog. */
export interface LoadedLog {
  /** the segments; the last is active (writable) */
  segments: LogSegments;
  /** the first offset readable */
  logStartOffset: number;
  /** every offset below it is on disk and valid */
  recoveryPoint: number;
  /** what was found and done */
  recovery: RecoveryReport;
  /**
   * the offset the crash recovery scan started from (batches from it on were checked and
   * may be newer than the log's other state files); null after a clean shutdown
   */
  recoveredFrom: number | null;
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Opens the log in `dir` (creating the directory if missing), recovering after a crash.
 *
 * @param dir the log directory
 * @param settings live segment settings (the log's config)
 * @returns the segments, offsets and a recovery report
 * @example
 * ```ts
 * const loaded = await loadLog("/data/orders-0", { indexIntervalBytes: 4096 });
 * loaded.recovery.clean; // true after a clean shutdown
 * ```
 */
export async function loadLog(dir: string, settings: SegmentSettings): Promise<LoadedLog> {
  await Deno.mkdir(dir, { recursive: true });
  const messages: string[] = await recoverCleanerLeftovers(dir);
  const logBases: number[] = [];
  const indexFiles: { name: string; baseOffset: number }[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    if (entry.name.endsWith(TMP_SUFFIX)) {
      await removeIfExists(joinPath(dir, entry.name));
      continue;
    }
    const parsed = parseSegmentFileName(entry.name);
    if (!parsed) continue;
    if (parsed.suffix === LOG_SUFFIX) logBases.push(parsed.baseOffset);
    else indexFiles.push({ name: entry.name, baseOffset: parsed.baseOffset });
  }
  logBases.sort((a, b) => a - b);
  const bases = new Set(logBases);
  for (const f of indexFiles) {
    if (!bases.has(f.baseOffset)) await removeIfExists(joinPath(dir, f.name)); // orphan index
  }

  const markerPath = joinPath(dir, CLEAN_SHUTDOWN_MARKER);
  // A new log (no segment yet) has nothing to recover: it counts as clean.
  let clean = (await fileSize(markerPath)) !== null || logBases.length === 0;
  let recoveryPoint: number | null = null;
  let logStartOffset: number | null = null;
  try {
    recoveryPoint = await readCheckpoint(dir, RECOVERY_POINT_CHECKPOINT);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    messages.push(e.message);
    clean = false;
  }
  try {
    logStartOffset = await readCheckpoint(dir, LOG_START_OFFSET_CHECKPOINT);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    messages.push(e.message);
  }

  const segments = new LogSegments();
  let rebuiltIndexes = 0;
  let scannedBytes = 0;
  let truncatedBytes = 0;
  let recoveredFrom: number | null = null;
  for (let i = 0; i < logBases.length; i++) {
    const base = logBases[i];
    const size = (await fileSize(segmentFilePath(dir, base, LOG_SUFFIX)))!;
    const last = i === logBases.length - 1;
    const segment = LogSegment.open(dir, base, size, last ? Infinity : logBases[i + 1], settings);
    segment.closed = !last;
    segments.add(segment);
    if (!last) {
      // Cheap checks now (a stat); deeper ones when the indexes are first loaded.
      const indexSize = await fileSize(segment.indexPath);
      const timeSize = await fileSize(segment.timeIndexPath);
      if (
        indexSize === null || timeSize === null || indexSize % OFFSET_INDEX_ENTRY_SIZE !== 0 ||
        timeSize % TIME_INDEX_ENTRY_SIZE !== 0
      ) {
        if (segment.loadIndexes()) {
          rebuiltIndexes++;
          messages.push(`segment ${base}: ${segment.rebuildReason}; rebuilt`);
        }
      }
    }
  }
  if (segments.length === 0) {
    segments.add(LogSegment.create(dir, logStartOffset ?? 0, settings));
  }

  const active = segments.last()!;
  if (clean) {
    const r = active.loadActive();
    if (r.rebuilt) {
      rebuiltIndexes++;
      messages.push(`segment ${active.baseOffset}: ${r.message}; rebuilt`);
    } else if (r.message) messages.push(`segment ${active.baseOffset}: ${r.message}`);
    truncatedBytes += r.truncatedBytes;
  } else {
    const from = recoveryPoint ?? 0;
    recoveredFrom = Math.min(from, segments.last()!.nextOffset);
    let i = Math.max(0, segments.floorIndex(from));
    for (; i < segments.length; i++) {
      const segment = segments.at(i)!;
      const r = segment.recover(from);
      scannedBytes += r.scannedBytes;
      truncatedBytes += r.truncatedBytes;
      if (r.rebuiltIndexes) rebuiltIndexes++;
      if (r.message) messages.push(`segment ${segment.baseOffset}: ${r.message}`);
      const next = segments.at(i + 1);
      if (next && segment.nextOffset !== next.baseOffset) {
        // The cut left a gap: later segments no longer follow on.
        for (const dropped of segments.removeFrom(next.baseOffset)) {
          truncatedBytes += dropped.size;
          dropped.delete();
        }
        messages.push(`segments from ${next.baseOffset} on were deleted after the cut`);
      }
      if (segments.at(i + 1)) segment.onBecomeInactive();
      else segment.closed = false;
    }
  }

  const first = segments.first()!;
  const logEndOffset = segments.last()!.nextOffset;
  let start = Math.max(logStartOffset ?? first.baseOffset, first.baseOffset);
  if (start > logEndOffset) {
    // Everything the log held lies below the start offset: begin afresh there.
    for (const s of segments.removeFirst(segments.length)) s.delete();
    segments.add(LogSegment.create(dir, start, settings));
    messages.push(`log start offset ${start} is past the log end; the log starts empty there`);
  }
  start = Math.min(start, segments.last()!.nextOffset);
  await removeIfExists(markerPath);
  return {
    segments,
    logStartOffset: start,
    recoveryPoint: segments.last()!.nextOffset,
    recoveredFrom: recoveredFrom === null
      ? null
      : Math.min(recoveredFrom, segments.last()!.nextOffset),
    recovery: {
      clean: clean && truncatedBytes === 0,
      scannedBytes,
      truncatedBytes,
      rebuiltIndexes,
      ...(messages.length > 0 ? { message: messages.join("; ") } : {}),
    },
  };
}
