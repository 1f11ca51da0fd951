/**
 * Log compaction (Kafka's `LogCleaner`): for a log whose topic has `cleanup.policy=compact`,
 * keep, per key, only the latest record.
 *
 * **A pass.** The log splits at the *first dirty offset* (the cleaner checkpoint
 * `cleaner-offset-checkpoint`, raised to the log start offset): below it the log is clean
 * (compacted before), above it dirty. The dirty part that may be cleaned ends before the
 * active segment (never cleaned), before the first segment holding an offset at or past
 * `maxOffset` (the high watermark) and before the first segment whose newest record is
 * younger than `min.compaction.lag.ms`. A pass runs once that cleanable part is at least
 * `min.cleanable.dirty.ratio` of the clean and cleanable bytes. It maps key → offset of the
 * key's latest record over the cleanable part (at most `maxDirtyBytes` of it, whole
 * segments, at least one), then rewrites every segment from the log start through the last
 * mapped segment, in groups whose total size fits in `segment.bytes`, each group into one
 * segment named after its first. A record is kept when no later record of its key was
 * mapped; a record without a key is dropped (a compacted topic takes none: see
 * `src/broker/compaction_checks.ts`); a tombstone (null value) that is the latest of its
 * key is kept until `delete.retention.ms` after its segment was first cleaned (the
 * segment's `.log` modification time, set to the cleaning time when a dirty segment is
 * first cleaned and carried over as the newest of a group's when segments are merged, as
 * Kafka does), then dropped. After the last group, the checkpoint moves to the end of the
 * mapped part.
 *
 * **Batches.** Offsets never change: a compacted log has gaps. A batch keeps its header
 * (base offset, lastOffsetDelta, timestamps, producer id, epoch and base sequence, leader
 * epoch, attributes) with the records kept, its length and CRC-32C recomputed. A batch left
 * with no record is dropped, except (as empty batches) the last batch of each group (so that
 * a segment still ends where the next begins) and the last batch of an idempotent producer
 * the log still has state for (as Kafka, for the producer's sequence state); an empty batch
 * no longer needed goes at the next pass. A compressed batch is read decompressed and what it
 * keeps is compressed again with its codec; control batches are kept whole. Readers skip
 * gaps: a read from a removed offset returns
 * the next batch (`LogSegment.read` finds the first batch ending at or after the offset).
 *
 * **Files and crash safety** (as Kafka's `replaceSegments`). A group is written as
 * `<base>.log.cleaned`, `.index.cleaned`, `.timeindex.cleaned`, each fsynced. Installing
 * it: rename the `.cleaned` files to `.swap` (the index files first, the `.log` last) and
 * fsync the directory; rename every replaced segment's files to `<name>.deleted`; rename the
 * `.swap` files to their final names; fsync the directory; remove the `.deleted` files.
 * {@linkcode recoverCleanerLeftovers}, run when a log is opened, finishes or forgets what a
 * crash interrupted: `.cleaned` files are removed (the segments they copy are intact); a
 * `<base>.log.swap` is complete (it was fsynced before the rename), so every segment whose
 * base offset lies in [base, the swap's end offset) is removed and the swap takes its
 * place; `.deleted` files and index `.swap` files without their `.log.swap` are removed (a
 * missing index is rebuilt when the log is loaded).
 *
 * @module
 */
import {
  compressBatch,
  compressionOf,
  type CompressionType,
  inflateBatch,
  prepareCompression,
} from "../protocol/compression.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { crc32c } from "../protocol/crc32c.ts";
import { RillError } from "../protocol/errors.ts";
import { ATTR, BATCH_HEADER_SIZE, LOG_OVERHEAD, POS } from "../protocol/record_batch.ts";
import { varintCursor, zigZagAt } from "../protocol/varint.ts";
import { syncDir, syncDirSync } from "./checkpoint.ts";
import {
  INDEX_SUFFIX,
  joinPath,
  LOG_SUFFIX,
  parseSegmentFileName,
  segmentFilePath,
  TIME_INDEX_SUFFIX,
} from "./file_names.ts";
import { OffsetIndex } from "./offset_index.ts";
import { type LogSegment, readFullyAtSync } from "./segment.ts";
import { TimeIndex } from "./time_index.ts";

/** The per-log checkpoint of the first dirty offset. */
export const CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint";
/** Suffix of a compacted segment's files while they are written. */
export const CLEANED_SUFFIX = ".cleaned";
/** Suffix of a compacted segment's files once complete, before they replace the old ones. */
export const SWAP_SUFFIX = ".swap";
/** Suffix of replaced segments' files, until they are removed. */
export const DELETED_SUFFIX = ".deleted";

/** Kafka's defaults of the compaction topic configs. */
export const DEFAULT_CLEANER_CONFIG: Readonly<CleanerConfig> = Object.freeze({
  minCleanableDirtyRatio: 0.5,
  deleteRetentionMs: 24 * 60 * 60 * 1000,
  minCompactionLagMs: 0,
});

/** The compaction settings of a log (its topic's configs). */
export interface CleanerConfig {
  /** min.cleanable.dirty.ratio */
  minCleanableDirtyRatio: number;
  /** delete.retention.ms */
  deleteRetentionMs: number;
  /** min.compaction.lag.ms */
  minCompactionLagMs: number;
}

/** What to clean in one pass: see {@linkcode planCleaning}. */
export interface CleaningPlan {
  /** the first dirty offset */
  firstDirtyOffset: number;
  /** the end (exclusive) of the part mapped: the new checkpoint once the pass is done */
  endOffset: number;
  /** the dirty segments mapped (a suffix of `sources`) */
  dirty: LogSegment[];
  /** every segment rewritten, oldest first: the log's first through the last mapped */
  sources: LogSegment[];
  /** bytes of the segments below the first dirty offset */
  cleanBytes: number;
  /** bytes of every cleanable dirty segment (the ratio's numerator) */
  cleanableBytes: number;
}

/** What a pass did. */
export interface CleanResult {
  /** segments read and rewritten (merged groups count each source) */
  segmentsCleaned: number;
  /** bytes before */
  bytesRead: number;
  /** bytes after */
  bytesWritten: number;
  /** records dropped (superseded, expired tombstones, keyless) */
  recordsRemoved: number;
  /** the new first dirty offset */
  firstDirtyOffset: number;
}

/** One segment to rewrite, and whether its tombstones are still kept. */
export interface CleaningSource {
  /** the segment */
  segment: LogSegment;
  /** whether the segment was already clean (below the first dirty offset) */
  wasClean: boolean;
  /** its `.log` modification time (when it was first cleaned, if it was clean) */
  lastModified: number;
}

/** A group's compacted copy, written as `.cleaned` files. */
export interface CleanedSegment {
  /** the base offset (the first source's) */
  baseOffset: number;
  /** the `.log` size */
  size: number;
  /** the offset after its last batch (the last source's next offset) */
  nextOffset: number;
  /** records dropped */
  recordsRemoved: number;
}

/** Options of {@linkcode cleanGroup}. */
export interface CleanGroupOptions {
  /** the clock (ms) */
  now: number;
  /** delete.retention.ms */
  deleteRetentionMs: number;
  /** index.interval.bytes */
  indexIntervalBytes: number;
  /** whether the batch ending at `lastOffset` is the last batch of the idempotent producer */
  isProducerTail: (producerId: number, lastOffset: number) => boolean;
  /** abort (throw) when this says so, checked before each read */
  aborted?: () => boolean;
}

const CHUNK = 1 << 20;
const MAX_RELATIVE_OFFSET = 0x7fffffff;

function corrupt(message: string): RillError {
  return new RillError("CORRUPT_MESSAGE", message);
}

function readI64(view: DataView, pos: number): number {
  return view.getInt32(pos) * 4294967296 + view.getUint32(pos + 4);
}

function isNotFound(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound;
}

function removeSyncIfExists(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

function renameSyncIfExists(from: string, to: string): boolean {
  try {
    Deno.renameSync(from, to);
    return true;
  } catch (e) {
    if (!isNotFound(e)) throw e;
    return false;
  }
}

/** The three files of the segment at `baseOffset`, with `extra` appended to each name. */
function segmentPaths(dir: string, baseOffset: number, extra = ""): string[] {
  return [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX].map((s) =>
    segmentFilePath(dir, baseOffset, s) + extra
  );
}

// ---------------------------------------------------------------------------- reading

/**
 * Yields each whole batch of a segment, in order, with its position (sync reads of at
 * most 1 MiB at a time; a larger batch is read whole).
 *
 * @param segment the segment
 * @param aborted checked before each read
 * @throws {RillError} CORRUPT_MESSAGE if the file does not hold whole batches
 */
export function* segmentBatches(
  segment: LogSegment,
  aborted: () => boolean = () => false,
): Generator<{ batch: Uint8Array; position: number }> {
  const size = segment.size;
  let pos = 0;
  while (pos < size) {
    if (aborted()) throw new RillError("KAFKA_STORAGE_ERROR", "Compaction was aborted");
    const chunk = segment.readAt(pos, Math.min(CHUNK, size - pos));
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = 0;
    while (chunk.length - at >= BATCH_HEADER_SIZE) {
      const len = view.getInt32(at + POS.batchLength) + LOG_OVERHEAD;
      if (len < BATCH_HEADER_SIZE) {
        throw corrupt(`Segment ${segment.baseOffset} has a bad batch at position ${pos + at}`);
      }
      if (at + len > chunk.length) break;
      yield { batch: chunk.subarray(at, at + len), position: pos + at };
      at += len;
    }
    if (at > 0) {
      pos += at;
      continue;
    }
    // A batch larger than the chunk (or a torn tail).
    if (chunk.length < BATCH_HEADER_SIZE) {
      throw corrupt(`Segment ${segment.baseOffset} ends in a torn batch at position ${pos}`);
    }
    const len = view.getInt32(POS.batchLength) + LOG_OVERHEAD;
    if (len < BATCH_HEADER_SIZE || pos + len > size) {
      throw corrupt(`Segment ${segment.baseOffset} has a bad batch at position ${pos}`);
    }
    if (aborted()) throw new RillError("KAFKA_STORAGE_ERROR", "Compaction was aborted");
    yield { batch: segment.readAt(pos, len), position: pos };
    pos += len;
  }
}

/** Reads a zig-zag varint at `pos` (sets `varintCursor.next` after it). */
function varint(buf: Uint8Array, pos: number, end: number): number {
  try {
    return zigZagAt(buf, pos, end);
  } catch {
    throw corrupt("A record has a malformed varint or a field runs past its record");
  }
}

/** One record of an uncompressed batch, located in the batch's bytes. */
interface RecordSpan {
  /** where the record (its length varint) starts */
  start: number;
  /** where it ends */
  end: number;
  /** its offset */
  offset: number;
  /** the key as a map key (one char per byte), or null */
  key: string | null;
  /** whether its value is null */
  tombstone: boolean;
}

function keyString(buf: Uint8Array, from: number, to: number): string {
  if (to - from <= 64) {
    let s = "";
    for (let i = from; i < to; i++) s += String.fromCharCode(buf[i]);
    return s;
  }
  let s = "";
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode(...buf.subarray(i, Math.min(to, i + 4096)));
  }
  return s;
}

/** Walks the records of an uncompressed batch. */
function forEachRecord(batch: Uint8Array, visit: (r: RecordSpan) => void): void {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const baseOffset = readI64(view, POS.baseOffset);
  const count = view.getInt32(POS.recordCount);
  const end = batch.length;
  let pos: number = POS.records;
  for (let i = 0; i < count; i++) {
    const start = pos;
    const len = varint(batch, pos, end);
    const recEnd = varintCursor.next + len;
    if (len < 1 || recEnd > end) throw corrupt(`Record ${i} at offset ${baseOffset} is torn`);
    pos = varintCursor.next + 1; // attributes
    varint(batch, pos, recEnd); // timestamp delta
    const offset = baseOffset + varint(batch, varintCursor.next, recEnd);
    const kl = varint(batch, varintCursor.next, recEnd);
    const key = kl < 0 ? null : keyString(batch, varintCursor.next, varintCursor.next + kl);
    const vl = varint(batch, varintCursor.next + Math.max(kl, 0), recEnd);
    visit({ start, end: recEnd, offset, key, tombstone: vl < 0 });
    pos = recEnd;
  }
}

function isCompactable(batch: Uint8Array): boolean {
  const attributes = (batch[POS.attributes] << 8) | batch[POS.attributes + 1];
  return (attributes & ATTR.control) === 0;
}

/** The codec of a stored batch ("none" if it is not compressed). */
function codecOf(batch: Uint8Array): CompressionType {
  return compressionOf((batch[POS.attributes] << 8) | batch[POS.attributes + 1]);
}

// ---------------------------------------------------------------------------- planning

/**
 * Chooses what one pass cleans (see the module doc), or nothing.
 *
 * @param closed the log's segments except the active one, oldest first
 * @param firstDirtyOffset the cleaner checkpoint, raised to the log start offset
 * @param options the clock, bounds and configs
 * @returns the plan, or null when there is nothing cleanable or the dirty ratio is too low
 * @example
 * ```ts
 * const plan = planCleaning(closedSegments, 0, {
 *   now: Date.now(), maxOffset: hw, maxDirtyBytes: 64 << 20, ...DEFAULT_CLEANER_CONFIG,
 * });
 * ```
 */
export function planCleaning(
  closed: readonly LogSegment[],
  firstDirtyOffset: number,
  options: CleanerConfig & { now: number; maxOffset: number; maxDirtyBytes: number },
): CleaningPlan | null {
  let cleanBytes = 0;
  let i = 0;
  for (; i < closed.length && closed[i].nextOffset <= firstDirtyOffset; i++) {
    cleanBytes += closed[i].size;
  }
  const firstDirtyIndex = i;
  let cleanableBytes = 0;
  let mappedBytes = 0;
  let lastMapped = -1;
  let mapping = true;
  for (; i < closed.length; i++) {
    const s = closed[i];
    if (s.nextOffset > options.maxOffset) break;
    const lag = options.minCompactionLagMs;
    if (lag > 0 && s.maxTimestamp > options.now - lag) break;
    cleanableBytes += s.size;
    if (mapping && (lastMapped < 0 || mappedBytes + s.size <= options.maxDirtyBytes)) {
      mappedBytes += s.size;
      lastMapped = i;
    } else mapping = false;
  }
  if (lastMapped < 0 || cleanableBytes === 0) return null;
  const ratio = cleanableBytes / (cleanBytes + cleanableBytes);
  if (ratio < options.minCleanableDirtyRatio) return null;
  return {
    firstDirtyOffset,
    endOffset: closed[lastMapped].nextOffset,
    dirty: closed.slice(firstDirtyIndex, lastMapped + 1),
    sources: closed.slice(0, lastMapped + 1),
    cleanBytes,
    cleanableBytes,
  };
}

/**
 * Maps each key to the offset of its latest record in [from, to) of `segments` (Kafka's
 * `OffsetMap`, exact: keys are kept whole).
 *
 * @param segments the dirty segments, oldest first
 * @param from the first dirty offset
 * @param to the end of the mapped part
 * @param aborted checked before each read
 * @returns key (one char per byte) → latest offset (the event loop is yielded to after each
 *   MiB read)
 * @example
 * ```ts
 * const map = await buildOffsetMap(plan.dirty, plan.firstDirtyOffset, plan.endOffset);
 * ```
 */
export async function buildOffsetMap(
  segments: readonly LogSegment[],
  from: number,
  to: number,
  aborted?: () => boolean,
): Promise<Map<string, number>> {
  const map = new Map<string, number>();
  let sinceYield = 0;
  for (const segment of segments) {
    for (const { batch } of segmentBatches(segment, aborted)) {
      if (isCompactable(batch)) {
        forEachRecord(inflateBatch(batch), (r) => {
          if (r.key !== null && r.offset >= from && r.offset < to) map.set(r.key, r.offset);
        });
      }
      sinceYield += batch.length;
      if (sinceYield >= CHUNK) {
        sinceYield = 0;
        await yieldToEventLoop(); // requests go first: the cleaner runs beside them
      }
    }
  }
  return map;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Splits the sources into groups that each become one segment: consecutive, total size
 * within `segmentBytes`, offsets within 2^31-1 of the group's base.
 *
 * @param sources the segments to rewrite, oldest first
 * @param segmentBytes segment.bytes
 * @returns the groups, oldest first
 * @example
 * ```ts
 * groupForCleaning(sources, 1 << 30); // [[s0, s1], [s2]]
 * ```
 */
export function groupForCleaning(
  sources: readonly CleaningSource[],
  segmentBytes: number,
): CleaningSource[][] {
  const groups: CleaningSource[][] = [];
  let group: CleaningSource[] = [];
  let bytes = 0;
  for (const s of sources) {
    const first = group[0]?.segment;
    if (
      first &&
      (bytes + s.segment.size > segmentBytes ||
        s.segment.nextOffset - 1 - first.baseOffset > MAX_RELATIVE_OFFSET)
    ) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(s);
    bytes += s.segment.size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

// ---------------------------------------------------------------------------- rewriting

/** Rebuilds a batch with only the records at `spans` (header kept, length and CRC new). */
function rebuildBatch(batch: Uint8Array, spans: RecordSpan[]): Uint8Array {
  let size: number = BATCH_HEADER_SIZE;
  for (const s of spans) size += s.end - s.start;
  const out = new Uint8Array(size);
  out.set(batch.subarray(0, BATCH_HEADER_SIZE));
  let at: number = BATCH_HEADER_SIZE;
  for (const s of spans) {
    out.set(batch.subarray(s.start, s.end), at);
    at += s.end - s.start;
  }
  const view = new DataView(out.buffer);
  view.setInt32(POS.batchLength, size - LOG_OVERHEAD);
  view.setInt32(POS.recordCount, spans.length);
  view.setUint32(POS.crc, crc32c(out.subarray(POS.attributes)));
  return out;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let n = 0;
  while (n < bytes.length) n += await file.write(bytes.subarray(n));
}

async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, bytes);
    await file.syncData();
  } finally {
    file.close();
  }
}

/**
 * Writes the compacted copy of a group as `<base>.log.cleaned` (and its two index files),
 * fsynced, with the `.log`'s modification time set to when its records were first cleaned.
 * Nothing is written when no record would be removed: the dirty sources' modification
 * times are then set to `now` (they count as cleaned now) and null is returned.
 *
 * @param dir the log directory
 * @param group the sources, oldest first
 * @param map key → latest offset (from {@linkcode buildOffsetMap})
 * @param options clock, configs and the producer-tail test
 * @returns the copy, or null if the group is unchanged
 * @throws {RillError} CORRUPT_MESSAGE on a bad batch, KAFKA_STORAGE_ERROR when aborted
 *   (the `.cleaned` files are then removed)
 * @example
 * ```ts
 * const cleaned = await cleanGroup(dir, group, map, options);
 * ```
 */
export async function cleanGroup(
  dir: string,
  group: readonly CleaningSource[],
  map: ReadonlyMap<string, number>,
  options: CleanGroupOptions,
): Promise<CleanedSegment | null> {
  const baseOffset = group[0].segment.baseOffset;
  const [indexPath, timeIndexPath, logPath] = segmentPaths(dir, baseOffset, CLEANED_SUFFIX);
  const file = await Deno.open(logPath, { write: true, create: true, truncate: true });
  const offsetIndex = new OffsetIndex(baseOffset);
  const timeIndex = new TimeIndex(baseOffset);
  let size = 0;
  let bytesSinceIndexEntry = 0;
  let maxTimestamp = -1;
  let nextOffset = baseOffset;
  let removed = 0;
  let changed = false;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let sinceYield = 0;
  const horizon = options.now - options.deleteRetentionMs;
  try {
    for (let g = 0; g < group.length; g++) {
      const { segment, wasClean, lastModified } = group[g];
      const keepTombstones = !wasClean || lastModified > horizon;
      const lastSource = g === group.length - 1;
      for (const { batch, position } of segmentBatches(segment, options.aborted)) {
        sinceYield += batch.length;
        if (sinceYield >= CHUNK) {
          sinceYield = 0;
          await yieldToEventLoop(); // requests go first: the cleaner runs beside them
        }
        const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
        const batchBase = readI64(view, POS.baseOffset);
        const lastOffset = batchBase + view.getInt32(POS.lastOffsetDelta);
        const batchMaxTimestamp = readI64(view, POS.maxTimestamp);
        let out: Uint8Array = batch;
        if (isCompactable(batch)) {
          const kept: RecordSpan[] = [];
          let total = 0;
          // A compressed batch is walked decompressed; what it keeps is compressed again
          // with its own codec (as Kafka's cleaner does).
          const codec = codecOf(batch);
          const plain = codec === "none" ? batch : inflateBatch(batch);
          forEachRecord(plain, (r) => {
            total++;
            if (r.key === null) return;
            const latest = map.get(r.key);
            if (latest !== undefined && latest > r.offset) return;
            if (r.tombstone && !keepTombstones) return;
            kept.push(r);
          });
          if (kept.length < total || total === 0) {
            const last = lastSource && position + batch.length === segment.size;
            const producerId = readI64(view, POS.producerId);
            if (kept.length > 0) {
              out = rebuildBatch(plain, kept);
              if (codec !== "none") {
                await prepareCompression(codec);
                out = compressBatch(out, codec);
              }
            } else if (
              last || (producerId >= 0 && options.isProducerTail(producerId, lastOffset))
            ) {
              if (total > 0) out = rebuildBatch(plain, []);
            } else {
              // Nothing left and nothing needs it (an empty batch too: an earlier pass's, or
              // a follower's gap filler).
              changed = true;
              removed += total;
              continue;
            }
            if (out !== batch) {
              changed = true;
              removed += total - kept.length;
            }
          }
        }
        if (out === batch) out = batch.slice(); // the chunk is reused by the next read
        if (bytesSinceIndexEntry > options.indexIntervalBytes) {
          offsetIndex.append(batchBase, size);
          if (maxTimestamp !== -1) timeIndex.maybeAppend(maxTimestamp, batchBase);
          bytesSinceIndexEntry = 0;
        }
        if (batchMaxTimestamp > maxTimestamp) maxTimestamp = batchMaxTimestamp;
        bytesSinceIndexEntry += out.length;
        size += out.length;
        nextOffset = lastOffset + 1;
        pending.push(out);
        pendingBytes += out.length;
        if (pendingBytes >= CHUNK) {
          await writeAll(file, concatBytes(pending, pendingBytes));
          pending = [];
          pendingBytes = 0;
        }
      }
    }
    if (!changed) {
      file.close();
      removeSyncIfExists(logPath);
      const now = new Date(options.now);
      for (const s of group) if (!s.wasClean) Deno.utimeSync(s.segment.logPath, now, now);
      return null;
    }
    if (pendingBytes > 0) await writeAll(file, concatBytes(pending, pendingBytes));
    await file.syncData();
    file.close();
  } catch (e) {
    try {
      file.close();
    } catch { /* already closed */ }
    await discardCleaned(dir, baseOffset);
    throw e;
  }
  if (maxTimestamp !== -1) timeIndex.maybeAppend(maxTimestamp, nextOffset);
  await writeSynced(indexPath, offsetIndex.encode());
  await writeSynced(timeIndexPath, timeIndex.encode());
  let cleanedAt = -Infinity;
  for (const s of group) {
    cleanedAt = Math.max(cleanedAt, s.wasClean ? s.lastModified : options.now);
  }
  const mtime = new Date(cleanedAt);
  Deno.utimeSync(logPath, mtime, mtime);
  return { baseOffset, size, nextOffset, recordsRemoved: removed };
}

/**
 * Removes a group's `.cleaned` files (an aborted or refused copy).
 *
 * @param dir the log directory
 * @param baseOffset the group's base offset
 * @returns once they are gone
 * @example
 * ```ts
 * await discardCleaned(dir, 0);
 * ```
 */
export async function discardCleaned(dir: string, baseOffset: number): Promise<void> {
  for (const path of segmentPaths(dir, baseOffset, CLEANED_SUFFIX)) {
    try {
      await Deno.remove(path);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

/**
 * Installs a compacted copy in place of the segments it was made from (synchronously, so
 * that no read runs in between): `.cleaned` → `.swap`, the old files → `.deleted`, `.swap`
 * → final names, then the `.deleted` files are removed; the directory is fsynced after the
 * first and the second step. The old segments' handles are closed ({@linkcode LogSegment.release}).
 *
 * @param dir the log directory
 * @param cleaned the copy
 * @param replaced the segments it replaces, oldest first
 * @example
 * ```ts
 * installCleaned(dir, cleaned, group.map((s) => s.segment));
 * ```
 */
export function installCleaned(
  dir: string,
  cleaned: CleanedSegment,
  replaced: readonly LogSegment[],
): void {
  const base = cleaned.baseOffset;
  const cleanedPaths = segmentPaths(dir, base, CLEANED_SUFFIX);
  const swapPaths = segmentPaths(dir, base, SWAP_SUFFIX);
  for (let i = 0; i < 3; i++) Deno.renameSync(cleanedPaths[i], swapPaths[i]); // .log last
  syncDirSync(dir);
  for (const s of replaced) {
    s.release();
    for (const path of segmentPaths(dir, s.baseOffset)) {
      renameSyncIfExists(path, path + DELETED_SUFFIX);
    }
  }
  const finalPaths = segmentPaths(dir, base);
  Deno.renameSync(swapPaths[2], finalPaths[2]); // the .log first: it decides on recovery
  Deno.renameSync(swapPaths[0], finalPaths[0]);
  Deno.renameSync(swapPaths[1], finalPaths[1]);
  syncDirSync(dir);
  for (const s of replaced) {
    for (const path of segmentPaths(dir, s.baseOffset)) removeSyncIfExists(path + DELETED_SUFFIX);
  }
}

// ---------------------------------------------------------------------------- recovery

/** The offset after the last batch of a `.log` file, walking batch headers. */
function fileEndOffset(path: string): number {
  const file = Deno.openSync(path, { read: true });
  try {
    const size = file.statSync().size;
    const header = new Uint8Array(BATCH_HEADER_SIZE);
    const view = new DataView(header.buffer);
    let pos = 0;
    let end = -1;
    while (pos < size) {
      const n = readFullyAtSync(file, pos, header);
      const len = view.getInt32(POS.batchLength) + LOG_OVERHEAD;
      if (n < BATCH_HEADER_SIZE || len < BATCH_HEADER_SIZE || pos + len > size) {
        throw new RillError(
          "KAFKA_STORAGE_ERROR",
          `Compacted segment ${path} is damaged at position ${pos}; it cannot replace the segments it copies`,
        );
      }
      end = readI64(view, POS.baseOffset) + view.getInt32(POS.lastOffsetDelta) + 1;
      pos += len;
    }
    if (end < 0) {
      throw new RillError("KAFKA_STORAGE_ERROR", `Compacted segment ${path} is empty`);
    }
    return end;
  } finally {
    file.close();
  }
}

/**
 * Finishes or forgets what an interrupted compaction left in a log directory (see the
 * module doc). Run before the segments are listed.
 *
 * @param dir the log directory
 * @returns what was done, in words (empty if nothing was left over)
 * @throws {RillError} KAFKA_STORAGE_ERROR if a `.log.swap` is damaged (it was fsynced
 *   before it got that name, so only a storage fault does this)
 * @example
 * ```ts
 * const messages = await recoverCleanerLeftovers("/data/orders-0");
 * ```
 */
export async function recoverCleanerLeftovers(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) if (entry.isFile) names.push(entry.name);
  const messages: string[] = [];
  let touched = false;
  const leftover = (suffix: string) => names.filter((n) => n.endsWith(suffix));
  for (const name of leftover(CLEANED_SUFFIX)) {
    removeSyncIfExists(joinPath(dir, name));
    touched = true;
  }
  const swaps: number[] = [];
  for (const name of leftover(SWAP_SUFFIX)) {
    const parsed = parseSegmentFileName(name.slice(0, -SWAP_SUFFIX.length));
    if (parsed?.suffix === LOG_SUFFIX) swaps.push(parsed.baseOffset);
  }
  swaps.sort((a, b) => a - b);
  for (const base of swaps) {
    const swapLog = segmentFilePath(dir, base, LOG_SUFFIX) + SWAP_SUFFIX;
    const end = fileEndOffset(swapLog);
    let replaced = 0;
    for (const name of names) {
      const parsed = parseSegmentFileName(name);
      if (!parsed || parsed.baseOffset < base || parsed.baseOffset >= end) continue;
      removeSyncIfExists(joinPath(dir, name));
      if (parsed.suffix === LOG_SUFFIX) replaced++;
    }
    Deno.renameSync(swapLog, segmentFilePath(dir, base, LOG_SUFFIX));
    messages.push(
      `segment ${base}: finished an interrupted compaction (its copy replaces ${replaced} old segment(s))`,
    );
    touched = true;
  }
  // Index swaps and replaced files: their indexes are rebuilt from the logs if missing.
  for (const name of [...leftover(SWAP_SUFFIX), ...leftover(DELETED_SUFFIX)]) {
    const parsed = parseSegmentFileName(name.replace(/\.(swap|deleted)$/, ""));
    if (parsed?.suffix === LOG_SUFFIX && name.endsWith(SWAP_SUFFIX)) continue; // done above
    removeSyncIfExists(joinPath(dir, name));
    touched = true;
  }
  if (touched) await syncDir(dir);
  return messages;
}
