/**
 * The leader's bookkeeping of its followers, as pure functions (tested without I/O):
 *
 * - each follower's log end offset (its fetch offset) and last caught-up time, updated on
 *   every replica fetch as Kafka does: a fetch at or past the leader's log end offset
 *   makes it caught up now; a fetch at or past the leader's log end offset at the previous
 *   fetch makes it caught up as of that previous fetch;
 * - the high watermark: the smallest log end offset over the ISR (the leader included);
 *   unknown while some ISR member has not fetched since this broker became leader;
 * - which followers leave the ISR (not caught up for `replica.lag.time.max.ms`) and which
 *   rejoin (their log end offset reached the high watermark).
 *
 * @module
 */

/** What the leader knows of one follower. */
export interface FollowerState {
  /** its log end offset (the offset of its last fetch), -1 before its first fetch */
  leo: number;
  /** when it was last caught up with the leader, ms since the epoch */
  lastCaughtUpMs: number;
  /** when it last fetched, ms since the epoch */
  lastFetchMs: number;
  /** the leader's log end offset at its last fetch */
  leaderLeoAtLastFetch: number;
}

/**
 * A follower's state at the moment this broker becomes leader.
 *
 * @param now ms since the epoch
 * @returns unknown position, caught up as of now (so it has a full lag period to fetch)
 * @example
 * ```ts
 * const f = newFollower(Date.now());
 * ```
 */
export function newFollower(now: number): FollowerState {
  return { leo: -1, lastCaughtUpMs: now, lastFetchMs: now, leaderLeoAtLastFetch: -1 };
}

/**
 * Records a follower's fetch.
 *
 * @param f the follower (mutated)
 * @param fetchOffset the offset it fetches from (its log end offset)
 * @param leaderLeo the leader's log end offset now
 * @param now ms since the epoch
 * @example
 * ```ts
 * recordFetch(f, 100, 100, Date.now()); // caught up
 * ```
 */
export function recordFetch(
  f: FollowerState,
  fetchOffset: number,
  leaderLeo: number,
  now: number,
): void {
  if (fetchOffset >= leaderLeo) f.lastCaughtUpMs = now;
  else if (fetchOffset >= f.leaderLeoAtLastFetch && f.leaderLeoAtLastFetch >= 0) {
    f.lastCaughtUpMs = Math.max(f.lastCaughtUpMs, f.lastFetchMs);
  }
  f.leo = fetchOffset;
  f.lastFetchMs = now;
  f.leaderLeoAtLastFetch = leaderLeo;
}

/**
 * The high watermark the ISR allows: the smallest log end offset over its members.
 *
 * @param leaderId the leader's id
 * @param leaderLeo the leader's log end offset
 * @param isr the in-sync replicas
 * @param followers what the leader knows of each follower
 * @returns the offset, or null while an ISR member's position is unknown
 * @example
 * ```ts
 * highWatermarkOf(1, 10, [1, 2], new Map([[2, { ...f, leo: 7 }]])); // 7
 * ```
 */
export function highWatermarkOf(
  leaderId: number,
  leaderLeo: number,
  isr: readonly number[],
  followers: ReadonlyMap<number, FollowerState>,
): number | null {
  let hw = leaderLeo;
  // An indexed loop: this runs on every leader append, and an iterator is an allocation.
  for (let i = 0; i < isr.length; i++) {
    const id = isr[i];
    if (id === leaderId) continue;
    const f = followers.get(id);
    if (!f || f.leo < 0) return null;
    if (f.leo < hw) hw = f.leo;
  }
  return hw;
}

/**
 * The ISR members (other than the leader) that have not been caught up for `lagMaxMs`.
 *
 * @param leaderId the leader's id
 * @param isr the in-sync replicas
 * @param followers what the leader knows of each follower
 * @param now ms since the epoch
 * @param lagMaxMs `replica.lag.time.max.ms`
 * @returns the ids to remove
 * @example
 * ```ts
 * laggingFollowers(1, [1, 2], followers, Date.now(), 10_000); // [2] if 2 is stuck
 * ```
 */
export function laggingFollowers(
  leaderId: number,
  isr: readonly number[],
  followers: ReadonlyMap<number, FollowerState>,
  now: number,
  lagMaxMs: number,
): number[] {
  return isr.filter((id) => {
    if (id === leaderId) return false;
    const f = followers.get(id);
    return !f || now - f.lastCaughtUpMs > lagMaxMs;
  });
}

/**
 * The replicas outside the ISR whose log end offset has reached the high watermark (and
 * the start of the leader's current epoch, so they hold this leader's history).
 *
 * @param replicas the partition's replicas
 * @param isr the in-sync replicas
 * @param followers what the leader knows of each follower
 * @param highWatermark the leader's high watermark
 * @param epochStartOffset where the leader's current epoch began
 * @returns the ids that may rejoin
 * @example
 * ```ts
 * caughtUpFollowers([1, 2, 3], [1, 2], followers, 100, 0); // [3] once 3 fetched at ≥ 100
 * ```
 */
export function caughtUpFollowers(
  replicas: readonly number[],
  isr: readonly number[],
  followers: ReadonlyMap<number, FollowerState>,
  highWatermark: number,
  epochStartOffset: number,
): number[] {
  return replicas.filter((id) => {
    if (isr.includes(id)) return false;
    const f = followers.get(id);
    return f !== undefined && f.leo >= highWatermark && f.leo >= epochStartOffset;
  });
}
