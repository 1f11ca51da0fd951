/**
 * The one way Rill writes to Deno KV: every commit goes through {@linkcode kvRetry}, which
 * retries `database is locked` (several processes sharing one SQLite KV file) with
 * exponential backoff and jitter.
 *
 * @module
 */

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
 * Runs `op` (a KV read-modify-write or commit), retrying while it fails with a transient
 * lock error. `op` must be safe to run again: re-read what it checks on every attempt.
 *
 * @param op the operation
 * @param options attempts and backoff
 * @returns what `op` returns
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
  for (let i = 1;; i++) {
    try {
      return await op();
    } catch (e) {
      if (i >= attempts || !isTransientKvError(e)) throw e;
      const delay = Math.min(max, base * 2 ** Math.min(i, 10));
      await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * delay / 2));
    }
  }
}
