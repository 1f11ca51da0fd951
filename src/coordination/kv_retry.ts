/**
 * The one way Rill writes to Deno KV: every commit goes through {@linkcode kvRetry}, which
 * retries `database is locked` (several processes sharing one SQLite KV file) with
 * exponential backoff and jitter.
 *
 * A write that fails because the disk is full (`database or disk is full`) asks the
 * registered reliefs ({@linkcode addDiskFullRelief}: the broker's reserve file, see
 * broker/disk_space.ts) to free space and is tried again once; if it still fails it throws
 * a retriable `KAFKA_STORAGE_ERROR` saying the disk is full, not an opaque 500.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";

/** Options of {@linkcode kvRetry}. */
export interface KvRetryOptions {
  /** how many attempts at most; default 50 */
  attempts?: number;
  /** first backoff in ms; default 2 */
  baseDelayMs?: number;
  /** largest backoff in ms; default 100 */
  maxDelayMs?: number;
}

/** Whether an error thrown by Deno KV is a transient lock conflict worth retrying. */
export function isTransientKvError(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /database is locked|SQLITE_BUSY|database table is locked/i.test(msg);
}

/**
 * Whether an error says the disk is full: SQLite's `database or disk is full` (Deno KV) or
 * the OS's ENOSPC (`No space left on device`).
 *
 * @param e what was thrown
 * @returns true for a full disk
 * @example
 * ```ts
 * isDiskFullError(new TypeError("database or disk is full")); // true
 * ```
 */
export function isDiskFullError(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /database or disk is full|SQLITE_FULL|No space left on device|os error 28\b/i.test(msg);
}

/**
 * The error a KV operation that failed on a full disk becomes.
 *
 * @param _cause the KV error (not shown to clients: it may name a path)
 * @returns KAFKA_STORAGE_ERROR (retriable)
 * @example
 * ```ts
 * throw kvDiskFull(e);
 * ```
 */
export function kvDiskFull(_cause: unknown): RillError {
  return new RillError(
    "KAFKA_STORAGE_ERROR",
    "The disk of the cluster metadata store (the KV file) is full: free space on it (delete topics, lower retention) and retry",
  );
}

const reliefs = new Set<() => boolean>();

/**
 * Registers something that can free disk space for a KV write that failed on a full disk.
 *
 * @param relief frees space, synchronously; returns whether it freed any
 * @returns removes the relief again
 * @example
 * ```ts
 * const remove = addDiskFullRelief(() => reserve.release());
 * ```
 */
export function addDiskFullRelief(relief: () => boolean): () => void {
  reliefs.add(relief);
  return () => reliefs.delete(relief);
}

function relieve(): boolean {
  let freed = false;
  for (const relief of reliefs) {
    try {
      if (relief()) freed = true;
    } catch {
      // a relief that fails frees nothing
    }
  }
  return freed;
}

/**
 * Runs `op` (a KV read-modify-write or commit), retrying while it fails with a transient
 * lock error. `op` must be safe to run again: re-read what it checks on every attempt.
 *
 * @param op the operation
 * @param options attempts and backoff
 * @returns what `op` returns
 * @throws {RillError} KAFKA_STORAGE_ERROR when the disk is full (after one relief)
 * @throws the last error when it is not transient or attempts run out
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * await kvRetry(() => kv.set(["k"], 1));
 * ```
 */
export async function kvRetry<T>(op: () => Promise<T>, options: KvRetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 50;
  const base = options.baseDelayMs ?? 2;
  const max = options.maxDelayMs ?? 100;
  let relieved = false;
  for (let i = 1;; i++) {
    try {
      return await op();
    } catch (e) {
      if (isDiskFullError(e)) {
        if (!relieved && relieve()) {
          relieved = true;
          continue;
        }
        throw kvDiskFull(e);
      }
      if (i >= attempts || !isTransientKvError(e)) throw e;
      const delay = Math.min(max, base * 2 ** Math.min(i, 10));
      await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * delay / 2));
    }
  }
}
