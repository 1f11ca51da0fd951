/**
 * Compaction of a partition log: one cleaner pass (plan, offset map, cleaned copies
 * installed in exclusive operations; the rules and files are log_cleaner.ts's), and the
 * cleaner checkpoint (the first dirty offset) it keeps.
 *
 * @module
 */
import { readCheckpoint } from "./checkpoint.ts";
import type { LogConfig } from "./log_config.ts";
import {
  buildOffsetMap,
  CLEANER_OFFSET_CHECKPOINT,
  cleanGroup,
  type CleaningSource,
  type CleanResult,
  DEFAULT_CLEANER_CONFIG,
  discardCleaned,
  groupForCleaning,
  installCleaned,
  planCleaning,
} from "./log_cleaner.ts";
import type { LogState } from "./log_state.ts";
import type { LogWriter } from "./log_writer.ts";
import { LogSegment } from "./segment.ts";

/** The compaction settings a log's config sets (the others keep their defaults). */
function definedCleanerConfig(config: LogConfig): Partial<typeof DEFAULT_CLEANER_CONFIG> {
  const out: { -readonly [K in keyof typeof DEFAULT_CLEANER_CONFIG]?: number } = {};
  if (config.minCleanableDirtyRatio !== undefined) {
    out.minCleanableDirtyRatio = config.minCleanableDirtyRatio;
  }
  if (config.deleteRetentionMs !== undefined) out.deleteRetentionMs = config.deleteRetentionMs;
  if (config.minCompactionLagMs !== undefined) out.minCompactionLagMs = config.minCompactionLagMs;
  return out;
}

/**
 * Compacts the log once, if its config says `compact` and enough of it is dirty: keeps,
 * per key, only the latest record of the closed segments (never the active one), up to
 * `maxOffset`. The rules, the files and the crash safety are those of `log_cleaner.ts`.
 * Reading and writing the copies runs beside appends and reads; each group's copy is
 * installed in an exclusive operation (after the writes queued before it), and a group
 * whose segments changed meanwhile (retention, truncation) is not installed. One pass at
 * a time: a call during a pass returns null.
 *
 * @param options `maxOffset`: nothing at or past it is compacted (the high watermark;
 *   default the log end offset); `maxDirtyBytes`: the most dirty bytes mapped (whole
 *   segments, at least one; default 64 MiB)
 * @returns what the pass did, or null if it did nothing
 * @throws {RillError} CORRUPT_MESSAGE if a segment holds a bad batch
 * @example
 * ```ts
 * const log = await PartitionLog.open(dir, { compact: true, segmentBytes: 1 << 20 });
 * await log.clean({ maxOffset: highWatermark });
 * ```
 */
export async function clean(
  state: LogState,
  writer: LogWriter,
  options: { maxOffset?: number; maxDirtyBytes?: number } = {},
): Promise<CleanResult | null> {
  if (!state.config.compact || state.closed || state.cleaning) return null;
  state.cleaning = true;
  try {
    if (state.cleanerCheckpoint === null) {
      let stored: number | null = null;
      try {
        stored = await readCheckpoint(state.dir, CLEANER_OFFSET_CHECKPOINT);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e; // damaged: clean from the start
      }
      state.cleanerCheckpoint ??= stored ?? 0;
    }
    if (state.closed) return null;
    const now = state.now();
    const config = { ...DEFAULT_CLEANER_CONFIG, ...definedCleanerConfig(state.config) };
    const closed = state.segments.all().slice(0, -1);
    const firstDirty = Math.max(state.cleanerCheckpoint!, state.logStartOffset);
    const plan = planCleaning(closed, firstDirty, {
      ...config,
      now,
      maxOffset: Math.min(options.maxOffset ?? Infinity, state.logEndOffset),
      maxDirtyBytes: options.maxDirtyBytes ?? 64 * 1024 * 1024,
    });
    if (!plan) return null;
    const aborted = () => state.closed;
    const map = await buildOffsetMap(plan.dirty, firstDirty, plan.endOffset, aborted);
    const sources: CleaningSource[] = plan.sources.map((segment) => ({
      segment,
      wasClean: segment.nextOffset <= firstDirty,
      lastModified: segment.nextOffset <= firstDirty
        ? (Deno.statSync(segment.logPath).mtime?.getTime() ?? 0)
        : now,
    }));
    const result: CleanResult = {
      segmentsCleaned: 0,
      bytesRead: 0,
      bytesWritten: 0,
      recordsRemoved: 0,
      firstDirtyOffset: firstDirty,
    };
    for (const group of groupForCleaning(sources, state.config.segmentBytes)) {
      const segments = group.map((g) => g.segment);
      const sizes = segments.map((s) => s.size);
      const cleaned = await cleanGroup(state.dir, group, map, {
        now,
        deleteRetentionMs: config.deleteRetentionMs,
        indexIntervalBytes: state.config.indexIntervalBytes,
        isProducerTail: (id, lastOffset) =>
          state.producers.entry(id)?.batches.at(-1)?.lastOffset === lastOffset,
        aborted,
      });
      if (cleaned === null) continue;
      let installed = false;
      await writer.exclusive(async () => {
        if (state.closed || state.failure !== null) return;
        await state.flushChain;
        const start = state.segments.floorIndex(segments[0].baseOffset);
        for (let i = 0; i < segments.length; i++) {
          const live = state.segments.at(start + i);
          if (live !== segments[i] || !live.closed || live.size !== sizes[i]) return;
        }
        if (start + segments.length >= state.segments.length) return; // never the active one
        installCleaned(state.dir, cleaned, segments);
        const copy = LogSegment.open(
          state.dir,
          cleaned.baseOffset,
          cleaned.size,
          cleaned.nextOffset,
          state.config,
        );
        copy.closed = true;
        state.segments.replace(start, segments.length, copy);
        state.updateClosedSize();
        installed = true;
      });
      if (!installed) {
        await discardCleaned(state.dir, cleaned.baseOffset);
        return null;
      }
      result.segmentsCleaned += segments.length;
      result.bytesRead += sizes.reduce((a, b) => a + b, 0);
      result.bytesWritten += cleaned.size;
      result.recordsRemoved += cleaned.recordsRemoved;
    }
    if (state.closed) return null;
    state.cleanerCheckpoint = Math.max(state.cleanerCheckpoint!, plan.endOffset);
    result.firstDirtyOffset = state.cleanerCheckpoint;
    await state.writeCheckpoint(CLEANER_OFFSET_CHECKPOINT, () => state.cleanerCheckpoint!);
    return result;
  } catch (e) {
    // Closed, or a segment deleted by retention meanwhile: the next pass starts afresh.
    if (state.closed || e instanceof Deno.errors.NotFound) return null;
    throw e;
  } finally {
    state.cleaning = false;
  }
}

export async function lowerCleanerCheckpoint(state: LogState, offset: number): Promise<void> {
  if (state.cleanerCheckpoint === null) {
    // Not read yet: lower the stored one, if any (it is read on the first pass).
    let stored: number | null = null;
    try {
      stored = await readCheckpoint(state.dir, CLEANER_OFFSET_CHECKPOINT);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
    }
    if (stored === null || stored <= offset) return;
  } else if (state.cleanerCheckpoint <= offset) return;
  state.cleanerCheckpoint = offset;
  await state.writeCheckpoint(CLEANER_OFFSET_CHECKPOINT, () => state.cleanerCheckpoint!);
}
