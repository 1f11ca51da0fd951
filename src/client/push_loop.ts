/**
 * A broker's partitions read through one push subscription of its WebSocket connection
 * (docs/http-api.md, "Push subscriptions") instead of a long poll: the broker sends records
 * the moment they are appended, and the client sends nothing per answer but a `credit` frame
 * now and then. Used by the session fetcher (session_fetcher.ts) for a broker whose hello
 * lists `subscribe`; against any other broker it long-polls.
 *
 * The subscription covers the partitions the fetcher's plan names for the broker (assigned,
 * not paused, not backing off), each from the consumer's fetch offset. Whenever the plan
 * changes — a partition paused or resumed, sought, assigned or revoked by a rebalance, moved
 * to another leader, reset after OFFSET_OUT_OF_RANGE — the loop unsubscribes and subscribes
 * again with the new set: pushes of the old subscription are dropped from that moment, and
 * the new one starts where the consumer's position says.
 *
 * Flow control: the subscription is granted {@linkcode PUSH_CREDIT} pushes of at most
 * `fetchMaxBytes / PUSH_CREDIT` bytes each ({@linkcode pushMaxBytes}); the pushes received are
 * granted back (half the window at a time) only while no partition of the subscription has its
 * buffer full (`maxBufferedBatches`). A consumer that falls behind thus stops the broker after
 * at most {@linkcode PUSH_CREDIT} pushes — about `fetchMaxBytes` — beyond its buffers: the
 * broker reads nothing for it until credit comes, and holds at most what the connection's
 * `maxUnsentBytes` lets it queue.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { RawPartitionAnswer } from "./multi_fetch.ts";
import type { FetchedPartition, SessionFetcher } from "./session_fetcher.ts";
import type { WsConnection, WsFetchAnswer, WsSubscription } from "./ws_connection.ts";

/**
 * The pushes a subscription is granted ahead; half of it is granted back at a time (a
 * `credit` frame per four pushes cost the consumer's process a socket write each, ~2x the
 * writes of the records' producer in the same process at 2,000 single records a second).
 */
export const PUSH_CREDIT = 32;

/** The fewest bytes a push may carry (see {@linkcode pushMaxBytes}). */
export const MIN_PUSH_BYTES = 64 * 1024;

/**
 * The most bytes of one push: the consumer's `fetchMaxBytes` spread over the credit, so that
 * the pushes the broker may send without more credit carry at most `fetchMaxBytes` (one long
 * poll's answer), but at least {@linkcode MIN_PUSH_BYTES}. A first batch larger than it still
 * comes whole.
 *
 * @param fetchMaxBytes the consumer's `fetchMaxBytes`
 * @returns the subscription's `maxBytes`
 */
export function pushMaxBytes(fetchMaxBytes: number): number {
  return Math.max(MIN_PUSH_BYTES, Math.floor(fetchMaxBytes / PUSH_CREDIT));
}

/** What a subscription covers: per partition key, its entry and the next offset expected. */
interface Covered<S> {
  e: { s: S; token: number; key: string };
  offset: number;
}

/**
 * Reads one broker's partitions through a push subscription until the fetcher stops, the
 * loop is stopped, or the subscription fails.
 */
export class PushLoop<S extends FetchedPartition> {
  readonly #f: SessionFetcher<S>;
  readonly #base: string;
  readonly #conn: WsConnection;
  #sub: WsSubscription | null = null;
  /** bumped at each subscribe: pushes of an older subscription are dropped */
  #generation = 0;
  readonly #covered = new Map<string, Covered<S>>();
  /** whether a subscription is meant to be open (#covered is what it holds) */
  #subscribed = false;
  /** pushes received and not granted back */
  #owed = 0;
  /** the error that ended the subscription, if the broker or the connection ended it */
  #ended: RillError | null = null;
  #wake: (() => void) | null = null;
  #stopped = false;
  /** pushes received (the caller's failure count starts over once one came) */
  received = 0;

  /**
   * @param fetcher the session fetcher (plan, host, transport)
   * @param base the broker's base URL
   * @param conn its WebSocket connection (it takes subscriptions)
   */
  constructor(fetcher: SessionFetcher<S>, base: string, conn: WsConnection) {
    this.#f = fetcher;
    this.#base = base;
    this.#conn = conn;
  }

  /** Re-plans: something changed (a buffer freed, a partition added, a push handled). */
  wake(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Ends the subscription; {@linkcode run} returns. */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe();
    this.wake();
  }

  /**
   * Runs until stopped or the fetcher stops.
   *
   * @throws {RillError} what ended the subscription (the connection closed:
   *   BROKER_NOT_AVAILABLE; an error of the whole read), for the caller to retry or fail
   */
  async run(): Promise<void> {
    const f = this.#f;
    while (!this.#stopped && f.running) {
      if (this.#ended !== null) {
        const e = this.#ended;
        this.#ended = null;
        throw e;
      }
      if (!this.#conn.open) {
        throw new RillError("BROKER_NOT_AVAILABLE", `The connection to ${this.#base} closed`);
      }
      const { fetch, heldBack } = f.plan(this.#base, true);
      if (!this.#matches(fetch)) {
        this.#unsubscribe();
        if (fetch.size > 0) await this.#subscribe(fetch);
        continue;
      }
      if (!heldBack && this.#owed >= PUSH_CREDIT / 2 && this.#sub !== null) {
        this.#sub.grant(this.#owed);
        this.#owed = 0;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    this.#unsubscribe();
  }

  /** Whether the open subscription covers exactly the plan's partitions at its offsets. */
  #matches(fetch: Map<string, { e: Covered<S>["e"]; offset: number }>): boolean {
    if (!this.#subscribed) return fetch.size === 0;
    if (fetch.size !== this.#covered.size) return false;
    for (const [key, x] of fetch) {
      const c = this.#covered.get(key);
      if (c === undefined || c.e !== x.e || c.offset !== x.offset) return false;
    }
    return true;
  }

  #unsubscribe(): void {
    this.#generation++;
    this.#subscribed = false;
    this.#covered.clear();
    this.#owed = 0;
    const sub = this.#sub;
    this.#sub = null;
    // Sent at once (answers to an older subscription are dropped from now on); the answer
    // is not awaited.
    sub?.cancel();
  }

  async #subscribe(fetch: Map<string, { e: Covered<S>["e"]; offset: number }>): Promise<void> {
    const generation = ++this.#generation;
    const o = this.#f.options;
    this.#subscribed = true;
    const partitions = [];
    for (const [key, x] of fetch) {
      this.#covered.set(key, { e: x.e, offset: x.offset });
      partitions.push({
        topic: x.e.s.topic,
        partition: x.e.s.partition,
        offset: x.offset,
        maxBytes: o.maxBytes,
      });
    }
    const sub = await this.#conn.subscribe(
      { partitions, credit: PUSH_CREDIT, maxBytes: pushMaxBytes(o.fetchMaxBytes) },
      (answer) => {
        if (generation === this.#generation) this.#pushed(answer);
      },
      (e) => {
        if (generation !== this.#generation) return;
        this.#ended = e;
        this.#subscribed = false;
        this.#sub = null;
        this.wake();
      },
    );
    if (generation === this.#generation) this.#sub = sub;
    else sub.cancel();
  }

  /** A push: each partition's records to the host, its errors handled, the loop woken. */
  #pushed(answer: WsFetchAnswer): void {
    const f = this.#f;
    let moved = false;
    let records = false;
    let errors = false;
    for (const p of answer.partitions) {
      const key = `${p.topic}\u0000${p.partition}`;
      const c = this.#covered.get(key);
      if (c === undefined) continue;
      const current = f.entry(key);
      // Left the plan meanwhile: re-planned when the loop wakes.
      if (current === undefined || current !== c.e) {
        errors = true;
        continue;
      }
      if (p.error !== undefined) {
        // The partition left the subscription on the broker.
        this.#covered.delete(key);
        errors = true;
        if (
          f.partitionFailed(this.#base, current.s, current.token, p.error, p.topic, p.partition)
        ) {
          moved = true;
        }
        continue;
      }
      const raw: RawPartitionAnswer = {
        topic: p.topic,
        partition: p.partition,
        nextOffset: p.nextOffset,
        highWatermark: p.highWatermark,
        logStartOffset: p.logStartOffset,
        bytes: p.bytes,
        error: null,
      };
      if (p.bytes.length > 0) records = true;
      f.host.deliver(current.s, current.token, raw, c.offset);
      if (p.nextOffset > c.offset) c.offset = p.nextOffset;
    }
    // Nothing waits for the hand-over here (no next request to hold back).
    if (records) f.host.handedOver?.(false);
    this.#owed++;
    this.received++;
    if (moved) f.wake();
    else if (this.#owed >= PUSH_CREDIT / 2 || this.#covered.size === 0 || errors) this.wake();
    // Otherwise nothing to re-plan: what changes the plan wakes the loop itself (seek, pause,
    // a rebalance, a buffer freed, a decode past the broker's next offset).
  }
}
