/**
 * The leader epoch cache of a partition log (Kafka's `LeaderEpochFileCache`): which leader
 * epoch began at which offset, so that a replica can ask "where did epoch N end?"
 * (Kafka's OffsetsForLeaderEpoch) and truncate whatever the current leader does not have.
 *
 * File `leader-epoch-checkpoint` in the log directory (text, as Kafka's):
 *
 * ```
 * 0            <- version
 * 2            <- number of entries
 * 0 0          <- epoch, start offset (the first offset appended in that epoch)
 * 3 1200
 * ```
 *
 * Entries are strictly increasing in both epoch and start offset. The file is rewritten
 * whole (tmp file, fsync, rename, directory fsync) whenever an entry is added or the cache
 * is truncated; that happens once per leader change, not per append. It is not
 * checksummed: a file that does not parse, or whose entries are out of order, counts as
 * damaged, and the log rebuilds the cache from the `partitionLeaderEpoch` field of its
 * batch headers (a walk over every batch header of the log, no CRC). A missing file is
 * rebuilt the same way. An entry written ahead of its batch (the process died between the
 * two) is dropped on open by truncating the cache to the log end offset.
 *
 * @module
 */
import { writeFileAtomic } from "./checkpoint.ts";
import { joinPath, LEADER_EPOCH_CHECKPOINT } from "./file_names.ts";

/** One leader epoch and the first offset appended in it. */
export interface EpochEntry {
  /** the leader epoch */
  epoch: number;
  /** the first offset appended in that epoch */
  startOffset: number;
}

/** The answer to OffsetsForLeaderEpoch: an epoch and the offset after its last record. */
export interface EpochEndOffset {
  /** the largest known epoch ≤ the one asked for, or -1 if none */
  epoch: number;
  /** the start offset of the next higher epoch, or the log end offset; -1 if unknown */
  endOffset: number;
}

const VERSION = 0;
const encoder = new TextEncoder();
/** Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET. */
export const UNDEFINED_EPOCH = -1;

/**
 * The (epoch, start offset) entries of one log, kept in its `leader-epoch-checkpoint`.
 *
 * @example
 * ```ts
 * const { cache } = await LeaderEpochCache.load(dir);
 * if (cache.assign(3, 1200)) await cache.flush();
 * cache.endOffsetFor(2, logEndOffset); // { epoch: 2, endOffset: 1200 }
 * ```
 */
export class LeaderEpochCache {
  /** The log directory. */
  readonly dir: string;
  #entries: EpochEntry[];

  /**
   * A cache with the given entries (not written until {@linkcode flush}).
   *
   * @param dir the log directory
   * @param entries entries in increasing epoch and start offset
   */
  constructor(dir: string, entries: EpochEntry[] = []) {
    this.dir = dir;
    this.#entries = entries.map((e) => ({ ...e }));
  }

  /**
   * Reads the checkpoint of `dir`.
   *
   * @param dir the log directory
   * @returns the cache, and `problem` ("missing" or why the file is damaged) when it could
   *   not be read: the cache is then empty and should be rebuilt from the log
   */
  static async load(dir: string): Promise<{ cache: LeaderEpochCache; problem?: string }> {
    let text: string;
    try {
      text = await Deno.readTextFile(joinPath(dir, LEADER_EPOCH_CHECKPOINT));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        return { cache: new LeaderEpochCache(dir), problem: "missing" };
      }
      throw e;
    }
    const parsed = parseCheckpoint(text);
    if (typeof parsed === "string") return { cache: new LeaderEpochCache(dir), problem: parsed };
    return { cache: new LeaderEpochCache(dir, parsed) };
  }

  /** The entries, oldest first (a copy). */
  entries(): EpochEntry[] {
    return this.#entries.map((e) => ({ ...e }));
  }

  /** The latest epoch, or -1 if none is known. */
  get latestEpoch(): number {
    return this.#entries.at(-1)?.epoch ?? UNDEFINED_EPOCH;
  }

  /**
   * Records that `epoch` began at `startOffset`, if it is newer than the latest epoch
   * (older or equal epochs are ignored, as a batch of an old leader appended late must not
   * rewrite history). Entries starting at or after `startOffset` are dropped first.
   *
   * @param epoch a leader epoch (negative epochs are ignored)
   * @param startOffset the first offset appended in it
   * @returns whether the cache changed (then {@linkcode flush} it)
   */
  assign(epoch: number, startOffset: number): boolean {
    if (epoch < 0 || epoch <= this.latestEpoch) return false;
    while (this.#entries.length > 0 && this.#entries.at(-1)!.startOffset >= startOffset) {
      this.#entries.pop();
    }
    this.#entries.push({ epoch, startOffset });
    return true;
  }

  /**
   * Kafka's OffsetsForLeaderEpoch: for `epoch`, the largest known epoch ≤ it and the
   * start offset of the first epoch above that one (or `logEndOffset` if it is the latest).
   * An epoch below every known one answers itself and the first start offset; an epoch
   * above every known one (or -1, or an empty cache) answers `{ epoch: -1, endOffset: -1 }`.
   *
   * @param epoch the epoch asked for
   * @param logEndOffset the log end offset (the end of the latest epoch)
   * @returns the epoch and its end offset
   */
  endOffsetFor(epoch: number, logEndOffset: number): EpochEndOffset {
    const undefinedAnswer = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH };
    if (epoch === UNDEFINED_EPOCH || this.#entries.length === 0) return undefinedAnswer;
    if (epoch === this.latestEpoch) return { epoch, endOffset: logEndOffset };
    const higher = this.#entries.findIndex((e) => e.epoch > epoch);
    if (higher < 0) return undefinedAnswer;
    if (higher === 0) return { epoch, endOffset: this.#entries[0].startOffset };
    return { epoch: this.#entries[higher - 1].epoch, endOffset: this.#entries[higher].startOffset };
  }

  /**
   * Drops the entries that start at or after `endOffset` (the log was truncated there).
   *
   * @param endOffset the new log end offset
   * @returns whether the cache changed
   */
  truncateFromEnd(endOffset: number): boolean {
    const before = this.#entries.length;
    while (this.#entries.length > 0 && this.#entries.at(-1)!.startOffset >= endOffset) {
      this.#entries.pop();
    }
    return this.#entries.length !== before;
  }

  /**
   * The log start offset moved to `startOffset`: entries wholly below it are dropped and the
   * entry holding it now starts there.
   *
   * @param startOffset the new log start offset
   * @returns whether the cache changed
   */
  truncateFromStart(startOffset: number): boolean {
    let floor = -1;
    for (let i = 0; i < this.#entries.length && this.#entries[i].startOffset <= startOffset; i++) {
      floor = i;
    }
    if (floor < 0) return false;
    const changed = floor > 0 || this.#entries[floor].startOffset !== startOffset;
    this.#entries.splice(0, floor);
    this.#entries[0].startOffset = startOffset;
    return changed;
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries = [];
  }

  /**
   * Writes the checkpoint file atomically and durably.
   *
   * @returns once the file is on disk
   */
  flush(): Promise<void> {
    const lines = [String(VERSION), String(this.#entries.length)];
    for (const e of this.#entries) lines.push(`${e.epoch} ${e.startOffset}`);
    return writeFileAtomic(
      this.dir,
      LEADER_EPOCH_CHECKPOINT,
      encoder.encode(lines.join("\n") + "\n"),
    );
  }
}

/** Parses a checkpoint's text; returns why it is damaged if it is. */
function parseCheckpoint(text: string): EpochEntry[] | string {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length < 2 || lines[0].trim() !== String(VERSION)) {
    return `the leader-epoch checkpoint has an unknown version line "${lines[0] ?? ""}"`;
  }
  const count = Number(lines[1]);
  if (!Number.isSafeInteger(count) || count < 0 || lines.length !== count + 2) {
    return `the leader-epoch checkpoint says ${lines[1]} entries but holds ${lines.length - 2}`;
  }
  const entries: EpochEntry[] = [];
  for (let i = 2; i < lines.length; i++) {
    const m = /^(\d+) (\d+)$/.exec(lines[i].trim());
    const epoch = m ? Number(m[1]) : NaN;
    const startOffset = m ? Number(m[2]) : NaN;
    const prev = entries.at(-1);
    if (
      !m || epoch > 0x7fffffff || !Number.isSafeInteger(startOffset) ||
      (prev && (epoch <= prev.epoch || startOffset <= prev.startOffset))
    ) {
      return `the leader-epoch checkpoint has a bad entry "${lines[i]}" on line ${i + 1}`;
    }
    entries.push({ epoch, startOffset });
  }
  return entries;
}
