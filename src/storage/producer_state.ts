/**
 * Idempotent producer state of a partition log (Kafka's `ProducerStateManager`): for each
 * producer id, its epoch and the metadata of its last 5 batches, so that the leader can
 * tell a retried batch (a duplicate: answer with its original offsets, append nothing)
 * from a gap in the sequence (OUT_OF_ORDER_SEQUENCE_NUMBER) or a zombie producer (an older
 * epoch: INVALID_PRODUCER_EPOCH).
 *
 * Rules (Kafka's `ProducerAppendInfo`, for appends by the leader):
 * - a batch with the producer's current epoch whose (baseSequence, lastSequence) equals one
 *   of its last 5 batches is a duplicate;
 * - otherwise, with the current epoch, its baseSequence must follow the last batch's
 *   lastSequence (sequences wrap from 2^31-1 to 0); anything else, including a retry of a
 *   batch older than the last 5, is OUT_OF_ORDER_SEQUENCE_NUMBER;
 * - an epoch below the current one is INVALID_PRODUCER_EPOCH; a higher epoch must start at
 *   sequence 0 (its state then replaces the old epoch's);
 * - a producer id with no state (new, or whose state was expired or whose batches were all
 *   deleted) is accepted at any sequence, as Kafka does since KIP-360.
 * Appends by a follower (offsets already assigned) update the state without checking.
 *
 * Snapshot file `<offset as 20 digits>.snapshot`: the state after every batch below
 * `offset` (big-endian binary):
 *
 * ```
 * version       i16   = 1
 * crc           u32   CRC-32C of everything after this field
 * producerCount i32
 * per producer:
 *   producerId i64, producerEpoch i16, lastSeen i64 (ms, the log's clock), batchCount i8
 *   (≤ 5), then per batch, oldest first:
 *   baseSequence i32, lastSequence i32, baseOffset i64, lastOffset i64, maxTimestamp i64
 * ```
 *
 * The log takes a snapshot at each roll (at the new segment's base offset) and on close
 * (at the log end offset), written as a `.tmp`, fsynced and renamed. On open the state is
 * the newest intact snapshot at or below the log end offset plus the batch headers of the
 * log after it (after a clean close: none; after a crash: about the active segment); a
 * damaged snapshot is deleted and the next older one used; with none, the whole log's
 * batch headers are walked. Snapshots below the first segment are deleted with it.
 *
 * Expiry (Kafka's `producer.id.expiration.ms`, default one day): a producer not seen for
 * that long is forgotten when the log applies retention. Unlike Kafka, which compares the
 * batches' maxTimestamp, "seen" is the log's clock at append (kept in snapshots; state
 * rebuilt from batch headers counts as seen when it was rebuilt), so that a producer
 * writing records with old event-time timestamps (a stream reprocessing the past) keeps
 * its deduplication state.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { crc32c } from "../protocol/crc32c.ts";
import { syncDir, writeFileAtomic } from "./checkpoint.ts";
import { joinPath, parseSnapshotFileName, snapshotFileName } from "./file_names.ts";

/** How many batches per producer are remembered for duplicate detection (Kafka's 5). */
export const PRODUCER_BATCH_WINDOW = 5;
/** Kafka's default producer.id.expiration.ms: one day. */
export const DEFAULT_PRODUCER_ID_EXPIRATION_MS = 24 * 60 * 60 * 1000;
const SNAPSHOT_VERSION = 1;
/** producerId i64, producerEpoch i16, lastSeen i64, batchCount i8 */
const PRODUCER_HEADER = 19;
const INT32_MAX = 0x7fffffff;

/** The producer fields of one batch. */
export interface ProducerBatch {
  /** the producer id (≥ 0 for an idempotent batch) */
  producerId: number;
  /** the producer epoch */
  producerEpoch: number;
  /** the sequence number of the first record */
  baseSequence: number;
  /** records in the batch minus one (its lastOffsetDelta) */
  lastOffsetDelta: number;
}

/** What the state remembers of one appended batch. */
export interface BatchMetadata {
  /** sequence number of its first record */
  baseSequence: number;
  /** sequence number of its last record */
  lastSequence: number;
  /** offset of its first record */
  baseOffset: number;
  /** offset of its last record */
  lastOffset: number;
  /** its maxTimestamp */
  maxTimestamp: number;
}

/** One producer's state. */
export interface ProducerStateEntry {
  /** the producer id */
  producerId: number;
  /** its current epoch */
  producerEpoch: number;
  /** when the log last appended a batch of it (ms, the log's clock), for expiry */
  lastSeen: number;
  /** its last batches (at most {@linkcode PRODUCER_BATCH_WINDOW}), oldest first */
  batches: BatchMetadata[];
}

/**
 * Changes to the producer state made by the appends of one group commit, checked against
 * the state plus the changes before them, and applied only once the group is written.
 */
export class ProducerStateTxn {
  readonly #base: Map<number, ProducerStateEntry>;
  /** the entries changed so far (copies) */
  readonly changed: Map<number, ProducerStateEntry> = new Map();

  /** @param base the committed state */
  constructor(base: Map<number, ProducerStateEntry>) {
    this.#base = base;
  }

  /**
   * The entry of `producerId` as the txn sees it.
   *
   * @param producerId the producer id
   * @returns the entry (not to be modified), or undefined
   */
  get(producerId: number): ProducerStateEntry | undefined {
    return this.changed.get(producerId) ?? this.#base.get(producerId);
  }

  /**
   * Checks a leader append of `batch` (see the module's rules).
   *
   * @param batch the batch's producer fields
   * @returns the metadata of the original if `batch` is a duplicate, else null
   * @throws {RillError} INVALID_PRODUCER_EPOCH for an older epoch,
   *   OUT_OF_ORDER_SEQUENCE_NUMBER for a sequence that does not follow on
   */
  check(batch: ProducerBatch): BatchMetadata | null {
    return checkBatch(this.get(batch.producerId), batch);
  }

  /**
   * Records an appended batch (leader or follower): a new epoch replaces the old one's
   * batches; the window keeps the last {@linkcode PRODUCER_BATCH_WINDOW}.
   *
   * @param batch the batch's producer fields
   * @param baseOffset the offset of its first record
   * @param maxTimestamp its maxTimestamp
   * @param now the log's clock (ms)
   */
  record(batch: ProducerBatch, baseOffset: number, maxTimestamp: number, now: number): void {
    const current = this.get(batch.producerId);
    let next: ProducerStateEntry;
    if (!current || current.producerEpoch !== batch.producerEpoch) {
      next = newEntry(batch, now);
    } else if (this.changed.get(batch.producerId) === current) next = current;
    else {
      next = {
        producerId: current.producerId,
        producerEpoch: current.producerEpoch,
        lastSeen: current.lastSeen,
        batches: current.batches.slice(),
      };
    }
    addBatch(next, batch, baseOffset, maxTimestamp, now);
    this.changed.set(batch.producerId, next);
  }
}

/** A producer's state before its first batch of an epoch is added. */
function newEntry(batch: ProducerBatch, now: number): ProducerStateEntry {
  return {
    producerId: batch.producerId,
    producerEpoch: batch.producerEpoch,
    lastSeen: now,
    batches: [],
  };
}

/** Adds a batch to an entry of its producer and epoch, keeping the window. */
function addBatch(
  entry: ProducerStateEntry,
  batch: ProducerBatch,
  baseOffset: number,
  maxTimestamp: number,
  now: number,
): void {
  entry.lastSeen = Math.max(entry.lastSeen, now);
  entry.batches.push({
    baseSequence: batch.baseSequence,
    lastSequence: incrementSequence(batch.baseSequence, batch.lastOffsetDelta),
    baseOffset,
    lastOffset: baseOffset + batch.lastOffsetDelta,
    maxTimestamp,
  });
  if (entry.batches.length > PRODUCER_BATCH_WINDOW) entry.batches.shift();
}

/** {@linkcode ProducerStateTxn.check} against a producer's entry (or none). */
function checkBatch(
  entry: ProducerStateEntry | undefined,
  batch: ProducerBatch,
): BatchMetadata | null {
  if (!entry) return null;
  const { producerId, producerEpoch, baseSequence } = batch;
  if (producerEpoch < entry.producerEpoch) {
    throw new RillError(
      "INVALID_PRODUCER_EPOCH",
      `Producer ${producerId} has epoch ${producerEpoch}, older than its current epoch ${entry.producerEpoch}`,
    );
  }
  if (producerEpoch > entry.producerEpoch) {
    if (baseSequence !== 0) {
      throw new RillError(
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        `Producer ${producerId} starts epoch ${producerEpoch} at sequence ${baseSequence}, not 0`,
      );
    }
    return null;
  }
  const lastSequence = incrementSequence(baseSequence, batch.lastOffsetDelta);
  for (const b of entry.batches) {
    if (b.baseSequence === baseSequence && b.lastSequence === lastSequence) return b;
  }
  const last = entry.batches.at(-1);
  const expected = last ? incrementSequence(last.lastSequence, 1) : 0;
  if (baseSequence !== expected) {
    throw new RillError(
      "OUT_OF_ORDER_SEQUENCE_NUMBER",
      `Producer ${producerId} (epoch ${producerEpoch}) sent sequence ${baseSequence}, expected ${expected}`,
      { expectedSequence: expected },
    );
  }
  return null;
}

/**
 * Kafka's DefaultRecordBatch.incrementSequence: `sequence + increment`, wrapping past
 * 2^31-1 to 0.
 *
 * @param sequence a sequence number
 * @param increment how far to move
 * @returns the sequence `increment` records on
 */
export function incrementSequence(sequence: number, increment: number): number {
  if (sequence > INT32_MAX - increment) return increment - (INT32_MAX - sequence) - 1;
  return sequence + increment;
}

/**
 * The producer state of one log, and its snapshot files.
 *
 * @example
 * ```ts
 * const state = new ProducerStateManager(dir);
 * const txn = state.begin();
 * const duplicate = txn.check(batch); // throws on a gap or an old epoch
 * if (!duplicate) txn.record(batch, baseOffset, maxTimestamp, Date.now());
 * state.commit(txn); // once the batch is written
 * ```
 */
export class ProducerStateManager {
  /** The log directory. */
  readonly dir: string;
  #producers: Map<number, ProducerStateEntry> = new Map();

  /** @param dir the log directory (where snapshots live) */
  constructor(dir: string) {
    this.dir = dir;
  }

  /** How many producers have state. */
  get size(): number {
    return this.#producers.size;
  }

  /**
   * One producer's state.
   *
   * @param producerId the producer id
   * @returns a copy of its entry, or undefined
   */
  entry(producerId: number): ProducerStateEntry | undefined {
    const e = this.#producers.get(producerId);
    return e ? { ...e, batches: e.batches.map((b) => ({ ...b })) } : undefined;
  }

  /**
   * Starts the changes of one group commit.
   *
   * @returns a txn over the current state
   */
  begin(): ProducerStateTxn {
    return new ProducerStateTxn(this.#producers);
  }

  /**
   * Checks a leader append of `batch` against the committed state, for a batch written
   * alone (LogWriter's idle-writer append): {@linkcode ProducerStateTxn.check} without a txn.
   *
   * @param batch the batch's producer fields
   * @returns the metadata of the original if `batch` is a duplicate, else null
   * @throws {RillError} as {@linkcode ProducerStateTxn.check}
   */
  check(batch: ProducerBatch): BatchMetadata | null {
    return checkBatch(this.#producers.get(batch.producerId), batch);
  }

  /**
   * Records a batch written alone, once it is written: {@linkcode ProducerStateTxn.record}
   * and {@linkcode commit} in one, changing the producer's entry in place (no txn may be
   * open: the log's writer runs one write at a time).
   *
   * @param batch the batch's producer fields
   * @param baseOffset the offset of its first record
   * @param maxTimestamp its maxTimestamp
   * @param now the log's clock (ms)
   */
  recordWritten(batch: ProducerBatch, baseOffset: number, maxTimestamp: number, now: number): void {
    let entry = this.#producers.get(batch.producerId);
    if (!entry || entry.producerEpoch !== batch.producerEpoch) {
      this.#producers.set(batch.producerId, entry = newEntry(batch, now));
    }
    addBatch(entry, batch, baseOffset, maxTimestamp, now);
  }

  /**
   * Applies a txn's changes (after its batches were written).
   *
   * @param txn the txn
   */
  commit(txn: ProducerStateTxn): void {
    for (const [id, entry] of txn.changed) this.#producers.set(id, entry);
  }

  /** Forgets every producer. */
  clear(): void {
    this.#producers.clear();
  }

  /**
   * Forgets producers not seen for `expirationMs` at `now`.
   *
   * @param now the current time, ms
   * @param expirationMs producer.id.expiration.ms
   * @returns how many producers were forgotten
   */
  removeExpired(now: number, expirationMs: number): number {
    let removed = 0;
    for (const [id, e] of this.#producers) {
      if (now - e.lastSeen >= expirationMs) {
        this.#producers.delete(id);
        removed++;
      }
    }
    return removed;
  }

  // ------------------------------------------------------------------ snapshots

  /**
   * Serializes the current state (to write later with {@linkcode writeSnapshot}).
   *
   * @returns the snapshot file's bytes
   */
  serialize(): Uint8Array {
    let size = 2 + 4 + 4;
    for (const e of this.#producers.values()) size += PRODUCER_HEADER + e.batches.length * 32;
    const buf = new Uint8Array(size);
    const view = new DataView(buf.buffer);
    view.setInt16(0, SNAPSHOT_VERSION);
    view.setInt32(6, this.#producers.size);
    let at = 10;
    for (const e of this.#producers.values()) {
      view.setBigInt64(at, BigInt(e.producerId));
      view.setInt16(at + 8, e.producerEpoch);
      view.setBigInt64(at + 10, BigInt(e.lastSeen));
      view.setInt8(at + 18, e.batches.length);
      at += PRODUCER_HEADER;
      for (const b of e.batches) {
        view.setInt32(at, b.baseSequence);
        view.setInt32(at + 4, b.lastSequence);
        view.setBigInt64(at + 8, BigInt(b.baseOffset));
        view.setBigInt64(at + 16, BigInt(b.lastOffset));
        view.setBigInt64(at + 24, BigInt(b.maxTimestamp));
        at += 32;
      }
    }
    view.setUint32(2, crc32c(buf.subarray(6)));
    return buf;
  }

  /**
   * Writes a snapshot file atomically and durably.
   *
   * @param offset the log end offset the state covers
   * @param bytes from {@linkcode serialize}
   * @returns once the file is on disk
   */
  writeSnapshot(offset: number, bytes: Uint8Array): Promise<void> {
    return writeFileAtomic(this.dir, snapshotFileName(offset), bytes);
  }

  /**
   * The offsets of the snapshot files in the directory, ascending.
   *
   * @returns the offsets
   */
  async snapshotOffsets(): Promise<number[]> {
    const out: number[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      const offset = e.isFile ? parseSnapshotFileName(e.name) : null;
      if (offset !== null) out.push(offset);
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * Deletes the snapshots whose offset is outside [from, to].
   *
   * @param from the lowest offset kept
   * @param to the highest offset kept
   * @returns how many were deleted
   */
  async deleteSnapshotsOutside(from: number, to: number): Promise<number> {
    let n = 0;
    for (const offset of await this.snapshotOffsets()) {
      if (offset >= from && offset <= to) continue;
      await removeIfExists(joinPath(this.dir, snapshotFileName(offset)));
      n++;
    }
    if (n > 0) await syncDir(this.dir);
    return n;
  }

  /**
   * Replaces the state with the newest intact snapshot at or below `maxOffset` (damaged
   * ones are deleted).
   *
   * @param maxOffset the log end offset
   * @returns the snapshot's offset (the state covers every batch below it), or null if there
   *   is none (the state is then empty), and what was wrong, in words
   */
  async loadLatestSnapshot(
    maxOffset: number,
  ): Promise<{ offset: number | null; problems: string[] }> {
    const problems: string[] = [];
    const offsets = (await this.snapshotOffsets()).filter((o) => o <= maxOffset).reverse();
    for (const offset of offsets) {
      const path = joinPath(this.dir, snapshotFileName(offset));
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        throw e;
      }
      const parsed = parseSnapshot(bytes);
      if (typeof parsed === "string") {
        problems.push(`producer snapshot ${offset}: ${parsed}; deleted`);
        await removeIfExists(path);
        continue;
      }
      this.#producers = parsed;
      return { offset, problems };
    }
    this.#producers = new Map();
    return { offset: null, problems };
  }
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

function readI64(view: DataView, pos: number): number {
  return view.getInt32(pos) * 4294967296 + view.getUint32(pos + 4);
}

/** Parses a snapshot file; returns why it is damaged if it is. */
function parseSnapshot(bytes: Uint8Array): Map<number, ProducerStateEntry> | string {
  if (bytes.length < 10) return `${bytes.length} bytes, shorter than a header`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getInt16(0);
  if (version !== SNAPSHOT_VERSION) return `unknown version ${version}`;
  if (view.getUint32(2) !== crc32c(bytes.subarray(6))) return "it fails its CRC";
  const count = view.getInt32(6);
  const out = new Map<number, ProducerStateEntry>();
  let at = 10;
  for (let i = 0; i < count; i++) {
    if (at + PRODUCER_HEADER > bytes.length) return "it is cut short";
    const producerId = readI64(view, at);
    const producerEpoch = view.getInt16(at + 8);
    const lastSeen = readI64(view, at + 10);
    const n = view.getInt8(at + 18);
    at += PRODUCER_HEADER;
    if (n < 0 || n > PRODUCER_BATCH_WINDOW || at + n * 32 > bytes.length) {
      return `producer ${producerId} has a bad batch count ${n}`;
    }
    const batches: BatchMetadata[] = [];
    for (let j = 0; j < n; j++) {
      batches.push({
        baseSequence: view.getInt32(at),
        lastSequence: view.getInt32(at + 4),
        baseOffset: readI64(view, at + 8),
        lastOffset: readI64(view, at + 16),
        maxTimestamp: readI64(view, at + 24),
      });
      at += 32;
    }
    out.set(producerId, { producerId, producerEpoch, lastSeen, batches });
  }
  if (at !== bytes.length) return `${bytes.length - at} stray bytes after the producers`;
  return out;
}
