/**
 * The broker's log of Kafka offset commits, and their write-behind copy into Deno KV.
 *
 * Kafka answers an OffsetCommit once the commit is appended to its `__consumer_offsets` log,
 * without an fsync, like any record; Rill acknowledges records the same way. An OffsetCommit
 * that the group's coordinator accepted (its in-memory member and generation checks,
 * kafka/group_coordinator.ts) is therefore appended here — one write(2) of a small entry to
 * `<data>/offset-commits.log`, no fsync — and answered at once; a writer then copies the
 * commits into the KV group store behind the answers, through the offset commit coalescer
 * (coordination/offset_commits.ts): every commit that arrived while the previous copy was in
 * flight, or within `COPY_WINDOW_MS` (5 ms) of the first, goes in the next one, one KV atomic
 * write for all of them (the latest offset of each partition), checked on each group's meta as
 * read in the same round (or kept from an earlier round while it is unchanged).
 *
 * Until its copy is in KV, a commit is *pending*: reads of committed offsets on this broker
 * ({@linkcode OffsetCommitLog.pendingOf}) lay the pending ones over what KV holds, so
 * nothing a client observes goes backwards; operations that replace a group's offsets
 * (delete, reset, a simple commit) first wait for the group's pending commits to be copied
 * ({@linkcode OffsetCommitLog.settled}).
 *
 * **Entries.** `[u32 length][u32 CRC-32C of the payload][payload]`, big-endian, the payload
 * the commit as JSON: `{"g":group,"m":member|null,"e":generation|null,"t":ms,"o":[[topic,
 * partition,offset,metadata],…]}`. Reading stops at the first entry whose length runs past
 * the end of the file or whose CRC does not match (a write cut short by a crash): the entries
 * before it are kept, it and anything after it are ignored.
 *
 * **Trimming.** Once `ROTATE_BYTES` have been appended since the last rotation, the pending
 * commits (usually none) are written into `offset-commits.next`, which is renamed over the
 * log: the log holds only what may still be missing from KV, plus what came since.
 *
 * **Restart.** The broker reads the log (and a `.next` a crash left behind) when it opens,
 * before it serves anyone, and copies what it holds into KV (a commit is not copied over a
 * newer one KV holds for the partition, so a restart long after does not move a group back).
 *
 * **When a copy is refused.** When the group was deleted, or Rill consumers took it,
 * between the answer and the copy, the commit is dropped with a log line. When KV cannot be
 * reached, the copy is retried (backing off up to 2 s) for as long as it takes; the commits
 * stay pending and in the log meanwhile.
 *
 * @module
 */
import {
  type ClassicCopyRequest,
  type ClassicOffset,
  type ClassicOffsetCopy,
  planClassicCopy,
} from "../coordination/group_classic.ts";
import { type CommittedOffset, groupOffsetKey } from "../coordination/group_keys.ts";
import { CommitCoalescer } from "../coordination/offset_commits.ts";
import { pendingKey } from "../coordination/group_offsets.ts";
import { type GroupSnapshot, readGroup } from "../coordination/group_store.ts";
import { crc32c } from "../protocol/crc32c.ts";
import { RillError } from "../protocol/errors.ts";
import { join } from "./data_dir.ts";

/** The log's file name in the data directory. */
export const OFFSET_COMMIT_LOG = "offset-commits.log";
/** The file a rotation writes before renaming it over the log. */
const NEXT = "offset-commits.next";
/** Bytes appended between two rotations. */
const ROTATE_BYTES = 1 << 20;
/** The most offsets in one copy request (KV allows 1000 mutations per atomic write). */
const COPY_CHUNK = 500;
/** Refusals that drop a commit: the group is gone or no longer a Kafka group. */
const DROPPED = new Set(["GROUP_ID_NOT_FOUND", "INCONSISTENT_GROUP_PROTOCOL"]);
const HEADER = 8;
/**
 * How long commits gather before a copy round starts: a consumer committing after every batch
 * sends hundreds a second, and a round costs KV a group read and a write however many it holds.
 */
const COPY_WINDOW_MS = 5;
/** Most group snapshots kept between copy rounds. */
const MAX_SNAPSHOTS = 10_000;

/** One Kafka commit, as appended. */
export interface LoggedCommit {
  /** the group */
  groupId: string;
  /** the committing member, or null for a simple commit */
  memberId: string | null;
  /** its generation, or null for a simple commit */
  generation: number | null;
  /** when it was committed (ms since epoch) */
  timestampMs: number;
  /** the offsets */
  offsets: ClassicOffset[];
}

/** A commit of one partition not yet in KV. */
export interface PendingOffset extends ClassicOffsetCopy {
  /** its place in the order of appends */
  seq: number;
  /** read back from the log at start (copied only over an older commit) */
  replayed: boolean;
}

/** What the log did, for tests and the benchmark. */
export interface OffsetLogStats {
  /** commits appended */
  appended: number;
  /** offsets copied into KV */
  copied: number;
  /** offsets whose copy was refused (group deleted or taken over) */
  dropped: number;
  /** copy rounds that failed and were retried */
  retries: number;
  /** KV atomic writes the copies took */
  kvWrites: number;
  /** group reads the copies took */
  kvReads: number;
}

/**
 * Encodes one entry.
 *
 * @param c the commit
 * @returns its bytes
 */
export function encodeCommitEntry(c: LoggedCommit): Uint8Array {
  const payload = new TextEncoder().encode(JSON.stringify({
    g: c.groupId,
    m: c.memberId,
    e: c.generation,
    t: c.timestampMs,
    o: c.offsets.map((o) => [o.topic, o.partition, o.offset, o.metadata]),
  }));
  const out = new Uint8Array(HEADER + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length);
  view.setUint32(4, crc32c(payload));
  out.set(payload, HEADER);
  return out;
}

/**
 * Decodes the entries of a log file, up to the first one cut short or damaged.
 *
 * @param bytes the file
 * @returns the entries, and how many bytes at the end were ignored
 */
export function decodeCommitEntries(
  bytes: Uint8Array,
): { commits: LoggedCommit[]; ignoredBytes: number } {
  const commits: LoggedCommit[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder();
  let pos = 0;
  while (bytes.length - pos >= HEADER) {
    const length = view.getUint32(pos);
    if (bytes.length - pos - HEADER < length) break;
    const payload = bytes.subarray(pos + HEADER, pos + HEADER + length);
    if (crc32c(payload) !== view.getUint32(pos + 4)) break;
    let c: LoggedCommit;
    try {
      const j = JSON.parse(text.decode(payload));
      c = {
        groupId: j.g,
        memberId: j.m,
        generation: j.e,
        timestampMs: j.t,
        offsets: (j.o as [string, number, number, string][]).map((
          [topic, partition, offset, metadata],
        ) => ({ topic, partition, offset, metadata })),
      };
    } catch {
      break;
    }
    commits.push(c);
    pos += HEADER + length;
  }
  return { commits, ignoredBytes: bytes.length - pos };
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
}

/** A caller of {@linkcode OffsetCommitLog.settled}: commits up to `limit` of a group, or all. */
interface Waiter {
  groupId: string | null;
  limit: number;
  resolve: () => void;
}

/** What {@linkcode OffsetCommitLog.open} needs. */
export interface OffsetCommitLogOptions {
  /** the broker's data directory */
  dataDir: string;
  /** the KV group store */
  kv: Deno.Kv;
  /** where one-line reports go */
  log: (line: string) => void;
  /** the clock */
  now?: () => number;
}

/**
 * The broker's Kafka offset commit log.
 *
 * @example
 * ```ts
 * const commits = OffsetCommitLog.open({ dataDir, kv, log: console.error });
 * await commits.recover();
 * commits.append({ groupId: "g", memberId, generation, timestampMs: Date.now(), offsets });
 * ```
 */
export class OffsetCommitLog {
  readonly #dir: string;
  readonly #kv: Deno.Kv;
  readonly #log: (line: string) => void;
  readonly #coalescer: CommitCoalescer<ClassicCopyRequest>;
  readonly #pending = new Map<string, Map<string, PendingOffset>>();
  readonly #snapshots = new Map<string, GroupSnapshot>();
  #count = 0;
  #seq = 0;
  #file: Deno.FsFile | null = null;
  #size = 0;
  #rotateAt = ROTATE_BYTES;
  #broken = false;
  #closed = false;
  #running = false;
  #backoffMs = 0;
  #lastFailureLog = 0;
  #waiters: Waiter[] = [];
  /** what the log did so far */
  readonly #stats = {
    appended: 0,
    copied: 0,
    dropped: 0,
    retries: 0,
    snapshotsAsked: 0,
    snapshotsRead: 0,
  };

  /** What the log did so far. */
  get stats(): OffsetLogStats {
    const c = this.#coalescer.stats;
    const { appended, copied, dropped, retries } = this.#stats;
    return {
      appended,
      copied,
      dropped,
      retries,
      kvWrites: c.writes,
      // the coalescer counts a kept snapshot as a read
      kvReads: c.reads - this.#stats.snapshotsAsked + this.#stats.snapshotsRead,
    };
  }

  private constructor(opts: OffsetCommitLogOptions) {
    this.#dir = opts.dataDir;
    this.#kv = opts.kv;
    this.#log = opts.log;
    this.#coalescer = new CommitCoalescer(
      opts.kv,
      planClassicCopy,
      opts.now,
      true,
      (groupId) => this.#snapshot(groupId),
    );
  }

  /**
   * Opens the log of a data directory: what an earlier run left in it becomes pending (copy
   * it with {@linkcode recover}), and a fresh log holding only that is started.
   *
   * @param opts the data directory, KV and log
   * @returns the log
   */
  static open(opts: OffsetCommitLogOptions): OffsetCommitLog {
    const self = new OffsetCommitLog(opts);
    for (const name of [OFFSET_COMMIT_LOG, NEXT]) {
      let bytes: Uint8Array;
      try {
        bytes = Deno.readFileSync(join(self.#dir, name));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        throw e;
      }
      const { commits, ignoredBytes } = decodeCommitEntries(bytes);
      for (const c of commits) self.#apply(c, true);
      if (ignoredBytes > 0) {
        opts.log(
          `offset commit log: ignored the last ${ignoredBytes} byte(s) of ${name} (an entry cut short or damaged)`,
        );
      }
    }
    if (self.#count > 0) {
      opts.log(`offset commit log: ${self.#count} Kafka committed offset(s) to copy into the KV`);
    }
    self.#rotate(true);
    return self;
  }

  /** Copies what an earlier run left pending into KV; resolves once it is there. */
  async recover(): Promise<void> {
    this.#schedule();
    await this.settled();
  }

  /**
   * Appends a commit (one write(2), no fsync) and makes it pending.
   *
   * @param c the commit, already accepted by the group's coordinator
   * @returns false when it could not be written (the caller commits it into KV itself)
   */
  append(c: LoggedCommit): boolean {
    if (this.#broken || this.#closed || this.#file === null) return false;
    const entry = encodeCommitEntry(c);
    try {
      writeAll(this.#file, entry);
    } catch (e) {
      // A write cut short leaves a damaged entry: nothing more is appended after it.
      this.#broken = true;
      this.#log(`offset commit log: a write failed (${e}); Kafka commits go to the KV directly`);
      return false;
    }
    this.#size += entry.length;
    this.#stats.appended++;
    this.#apply(c, false);
    if (this.#size >= this.#rotateAt) this.#rotate(false);
    this.#schedule();
    return true;
  }

  /**
   * The commits of a group not yet in KV, by `topic + "\u0000" + partition`.
   *
   * @param groupId the group
   * @returns the pending offsets, or undefined when there are none
   */
  pendingOf(groupId: string): ReadonlyMap<string, PendingOffset> | undefined {
    return this.#pending.get(groupId);
  }

  /**
   * Resolves once every commit appended so far (of one group, or of all) is in KV or was
   * dropped.
   *
   * @param groupId the group; all groups when absent
   */
  settled(groupId?: string): Promise<void> {
    const limit = this.#seq;
    const w: Waiter = { groupId: groupId ?? null, limit, resolve: () => {} };
    if (!this.#waits(w)) return Promise.resolve();
    return new Promise((resolve) => {
      w.resolve = resolve;
      this.#waiters.push(w);
    });
  }

  /**
   * Copies what is pending (waiting at most `timeoutMs` for it) and closes the file.
   *
   * @param timeoutMs how long to wait for the copy
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.settled(),
      new Promise((r) => timer = setTimeout(r, timeoutMs)),
    ]);
    clearTimeout(timer);
    // Everything is in KV: the next start has nothing to read.
    if (this.#count === 0 && this.#size > 0 && !this.#broken) this.#rotate(false);
    this.#file?.close();
    this.#file = null;
    if (this.#count > 0) {
      this.#log(
        `offset commit log: closed with ${this.#count} Kafka committed offset(s) not yet in the KV; the next start copies them`,
      );
    }
  }

  #apply(c: LoggedCommit, replayed: boolean): void {
    let group = this.#pending.get(c.groupId);
    if (!group) this.#pending.set(c.groupId, group = new Map());
    const seq = ++this.#seq;
    for (const o of c.offsets) {
      const k = pendingKey(o.topic, o.partition);
      if (!group.has(k)) this.#count++;
      group.set(k, {
        topic: o.topic,
        partition: o.partition,
        value: {
          offset: o.offset,
          metadata: o.metadata,
          commitTimestampMs: c.timestampMs,
          memberId: c.memberId,
          generation: c.generation,
        },
        seq,
        replayed,
      });
    }
  }

  /**
   * Starts a new log file holding the pending commits, renamed over the old one. On failure
   * the old file stays in use (it holds everything).
   */
  #rotate(opening: boolean): void {
    const next = join(this.#dir, NEXT);
    let file: Deno.FsFile | null = null;
    try {
      file = Deno.openSync(next, { write: true, create: true, truncate: true });
      let size = 0;
      for (const [groupId, group] of this.#pending) {
        for (const p of group.values()) {
          const entry = encodeCommitEntry({
            groupId,
            memberId: p.value.memberId,
            generation: p.value.generation,
            timestampMs: p.value.commitTimestampMs,
            offsets: [{
              topic: p.topic,
              partition: p.partition,
              offset: p.value.offset,
              metadata: p.value.metadata,
            }],
          });
          writeAll(file, entry);
          size += entry.length;
        }
      }
      Deno.renameSync(next, join(this.#dir, OFFSET_COMMIT_LOG));
      this.#file?.close();
      this.#file = file;
      this.#size = size;
      this.#rotateAt = size + ROTATE_BYTES;
    } catch (e) {
      try {
        file?.close();
      } catch { /* closed */ }
      if (opening) throw e;
      this.#rotateAt = this.#size + ROTATE_BYTES;
      this.#log(`offset commit log: could not start a new file (${e}); appending to the old one`);
    }
  }

  /**
   * A group as a copy round decides on it: a Kafka group's snapshot is kept from round to round
   * (one KV write a round instead of a read and a write) until a write's check finds its meta
   * changed (a rebalance), then read again.
   */
  async #snapshot(groupId: string): Promise<GroupSnapshot> {
    this.#stats.snapshotsAsked++;
    const kept = this.#snapshots.get(groupId);
    if (kept) return kept;
    this.#stats.snapshotsRead++;
    const snap = await readGroup(this.#kv, groupId);
    if (snap.meta?.kafka && snap.metaVersionstamp !== null) {
      if (this.#snapshots.size >= MAX_SNAPSHOTS) this.#snapshots.clear();
      this.#snapshots.set(groupId, snap);
    }
    return snap;
  }

  #schedule(): void {
    if (this.#running || this.#count === 0) return;
    this.#running = true;
    setTimeout(() => void this.#run(), this.#backoffMs || COPY_WINDOW_MS);
  }

  async #run(): Promise<void> {
    try {
      while (this.#count > 0) {
        const conflicts = this.#coalescer.stats.conflicts;
        const failed = await this.#copyRound();
        // A check failed: some group changed since its snapshot was kept.
        if (failed || this.#coalescer.stats.conflicts !== conflicts) this.#snapshots.clear();
        this.#wake();
        if (!failed) {
          this.#backoffMs = 0;
          if (this.#count > 0) await new Promise((r) => setTimeout(r, COPY_WINDOW_MS));
          continue;
        }
        this.#stats.retries++;
        this.#backoffMs = Math.min(2000, Math.max(50, this.#backoffMs * 2));
        if (this.#closed) return;
        await new Promise((r) => setTimeout(r, this.#backoffMs));
      }
    } finally {
      this.#running = false;
    }
    // Appended after the loop's last look.
    this.#schedule();
  }

  /** One copy of everything pending; true when some of it must be tried again. */
  async #copyRound(): Promise<boolean> {
    let failed = false;
    const jobs: Promise<void>[] = [];
    for (const [groupId, group] of this.#pending) {
      const round = [...group.values()];
      jobs.push(
        this.#copyGroup(groupId, round).catch((e) => {
          failed = true;
          const now = Date.now();
          if (now - this.#lastFailureLog >= 10_000) {
            this.#lastFailureLog = now;
            this.#log(
              `offset commit log: copying Kafka commits of group "${groupId}" into the KV failed (${
                e instanceof Error ? e.message : e
              }); retrying`,
            );
          }
        }),
      );
    }
    await Promise.all(jobs);
    return failed;
  }

  async #copyGroup(groupId: string, round: PendingOffset[]): Promise<void> {
    let list = round;
    if (list.some((p) => p.replayed)) list = await this.#notOverNewer(groupId, list);
    const chunks: PendingOffset[][] = [];
    for (let i = 0; i < list.length; i += COPY_CHUNK) chunks.push(list.slice(i, i + COPY_CHUNK));
    const results = await Promise.allSettled(chunks.map((chunk) =>
      this.#coalescer.commit(groupId, {
        offsets: chunk,
        byMember: chunk.some((p) => p.value.memberId !== null),
      })
    ));
    let retry: unknown = null;
    results.forEach((r, i) => {
      if (r.status === "fulfilled") {
        this.#stats.copied += chunks[i].length;
        this.#done(groupId, chunks[i]);
      } else if (r.reason instanceof RillError && DROPPED.has(r.reason.code)) {
        this.#stats.dropped += chunks[i].length;
        this.#log(
          `offset commit log: dropped ${
            chunks[i].length
          } Kafka offset commit(s) of group "${groupId}": ${r.reason.message}`,
        );
        this.#done(groupId, chunks[i]);
      } else retry ??= r.reason;
    });
    if (retry !== null) throw retry;
  }

  /** Leaves out replayed commits older than what KV holds for their partition. */
  async #notOverNewer(groupId: string, list: PendingOffset[]): Promise<PendingOffset[]> {
    const replayed = list.filter((p) => p.replayed);
    const older: PendingOffset[] = [];
    for (let i = 0; i < replayed.length; i += 10) {
      const chunk = replayed.slice(i, i + 10);
      const got = await this.#kv.getMany<CommittedOffset[]>(
        chunk.map((p) => groupOffsetKey(groupId, p.topic, p.partition)),
      );
      got.forEach((e, j) => {
        if (e.value !== null && e.value.commitTimestampMs > chunk[j].value.commitTimestampMs) {
          older.push(chunk[j]);
        }
      });
    }
    if (older.length === 0) return list;
    this.#done(groupId, older);
    const skip = new Set(older);
    return list.filter((p) => !skip.has(p));
  }

  /** Forgets copied (or dropped) commits, unless a newer one of the partition came since. */
  #done(groupId: string, list: PendingOffset[]): void {
    const group = this.#pending.get(groupId);
    if (!group) return;
    for (const p of list) {
      const k = pendingKey(p.topic, p.partition);
      if (group.get(k)?.seq === p.seq) {
        group.delete(k);
        this.#count--;
      }
    }
    if (group.size === 0) this.#pending.delete(groupId);
  }

  #waits(w: Waiter): boolean {
    const groups = w.groupId === null
      ? [...this.#pending.values()]
      : [this.#pending.get(w.groupId)].filter((g) => g !== undefined);
    return groups.some((g) => [...g.values()].some((p) => p.seq <= w.limit));
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) {
      if (this.#waits(w)) still.push(w);
      else w.resolve();
    }
    this.#waiters = still;
  }
}
