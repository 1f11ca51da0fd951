/**
 * A push subscription of a WebSocket connection (session.ts, `subscribe` frames): the broker
 * keeps a long poll on the subscription's partitions and sends a `records` frame each time any
 * of them has records, advancing each partition past what it sent, so the client does not
 * ask again after each answer. Flow control: each push spends one credit, granted by the
 * client (`subscribe`'s `credit`, then `credit` frames); without credit nothing is read, and a
 * push waits, as fetch answers do, until the socket has drained below `maxUnsentBytes`.
 *
 * Each fetch is the same fetch repeated (broker/repeated_fetch.ts): the partitions' replicas
 * and one wait listener are kept for the subscription's life, and a wait has no deadline (it
 * ends with records, a partition closing or failing, the broker draining, or the end of the
 * subscription).
 *
 * A partition whose read fails (`OFFSET_OUT_OF_RANGE`, `NOT_LEADER_OR_FOLLOWER`, …) is pushed
 * with its error and leaves the subscription; an error of the whole read ends it with an
 * `error` frame carrying the subscription's id.
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import type {
  FetchManyRequest,
  FetchPartitionRequest,
  PartitionFetchResult,
} from "../broker/fetch_session.ts";
import { RepeatedFetch } from "../broker/repeated_fetch.ts";

/** What a subscription needs from its connection. */
export interface SubscriptionHost {
  /** the broker */
  broker: Broker;
  /** whether the connection closed */
  closed(): boolean;
  /** whether the bytes queued on the socket are below the connection's bound */
  drained(): boolean;
  /** resolves once the bytes queued on the socket are below the connection's bound */
  waitForDrain(): Promise<void>;
  /**
   * Sends a `records` frame.
   *
   * @param parts the partitions it names: those with records, and those that failed
   * @param bytes how many bytes of records it carries (for the fetch quota)
   */
  push(parts: PartitionFetchResult[], bytes: number): void;
}

/** One subscription: see the module comment. */
export class Subscription {
  readonly #host: SubscriptionHost;
  #partitions: FetchPartitionRequest[];
  #credit: number;
  #ended = false;
  readonly #repeat = new RepeatedFetch();
  /** the fetch each push repeats (its partitions: the subscription's, as they are) */
  readonly #request: FetchManyRequest;
  #wake: (() => void) | null = null;

  /**
   * @param host the connection
   * @param partitions the partitions, each from its offset
   * @param maxBytes the most bytes of one push
   * @param credit the pushes the client can take before it grants more
   */
  constructor(
    host: SubscriptionHost,
    partitions: FetchPartitionRequest[],
    maxBytes: number,
    credit: number,
  ) {
    this.#host = host;
    this.#partitions = partitions;
    this.#credit = credit;
    this.#request = {
      partitions,
      maxWaitMs: Infinity,
      minBytes: 1,
      maxBytes,
      repeat: this.#repeat,
    };
  }

  /** Partitions still subscribed. */
  get partitions(): number {
    return this.#partitions.length;
  }

  /**
   * Grants more pushes.
   *
   * @param n how many
   */
  grant(n: number): void {
    this.#credit += n;
    this.#wakeUp();
  }

  /** Ends the subscription: no push is sent after this returns. */
  end(): void {
    this.#ended = true;
    this.#repeat.close();
    this.#wakeUp();
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  #over(): boolean {
    return this.#ended || this.#host.closed() || this.#partitions.length === 0;
  }

  /**
   * Moves each partition the answer names past what it read, drops those that failed, and
   * returns the partitions to push: those with records and those that failed. The
   * subscription's partitions keep their order; partitions the answer did not name stay as
   * they were, and a partition named twice counts once. Offsets move in place (the requests
   * are the subscription's own); the list is made anew only when a partition leaves.
   */
  #advance(answered: readonly PartitionFetchResult[]): PartitionFetchResult[] {
    const asked = this.#partitions;
    const parts: PartitionFetchResult[] = [];
    let failed: boolean[] | null = null;
    let byKey: Map<string, number> | null = null;
    // A partition named twice counts once (at most one push a partition): only a fetch of
    // several partitions can.
    const seen = answered.length > 1 ? new Uint8Array(asked.length) : null;
    for (const p of answered) {
      let i = -1;
      if (asked.length <= 16) {
        for (let j = 0; j < asked.length; j++) {
          if (asked[j].partition === p.partition && asked[j].topic === p.topic) {
            i = j;
            break;
          }
        }
      } else {
        byKey ??= new Map(asked.map((r, j) => [`${r.partition}:${r.topic}`, j]));
        i = byKey.get(`${p.partition}:${p.topic}`) ?? -1;
      }
      if (i < 0) continue;
      if (seen !== null) {
        if (seen[i] === 1) continue;
        seen[i] = 1;
      }
      const request = asked[i];
      if (p.error !== null) {
        (failed ??= new Array(asked.length).fill(false))[i] = true;
        parts.push(p);
        continue;
      }
      if (p.nextOffset > request.offset) request.offset = p.nextOffset;
      if (p.bytes.byteLength > 0) parts.push(p);
    }
    if (failed !== null) {
      const left = asked.filter((_, i) => !failed[i]);
      this.#partitions = left;
      this.#request.partitions = left;
    }
    return parts;
  }

  /**
   * Pushes records until the subscription ends, the connection closes or no partition is left.
   *
   * @throws {RillError} an error of the whole read (the caller answers it)
   */
  async run(): Promise<void> {
    try {
      await this.#pushes();
    } finally {
      this.#repeat.close();
    }
  }

  async #pushes(): Promise<void> {
    while (!this.#over()) {
      const started = Date.now();
      if (this.#credit <= 0) {
        await new Promise<void>((resolve) => this.#wake = resolve);
        continue;
      }
      if (!this.#host.drained()) {
        await this.#host.waitForDrain();
        if (this.#over()) return;
      }
      const result = await this.#host.broker.fetchMany(this.#request);
      try {
        if (this.#over()) return;
        const parts = this.#advance(result.partitions);
        if (parts.length > 0) {
          this.#credit--;
          this.#host.push(parts, result.totalBytes);
        }
      } finally {
        result.release();
      }
      if (Date.now() - started < 10 && result.totalBytes === 0) {
        // Answered at once with nothing (the broker is draining): do not spin.
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(() => this.#wakeUp(), 100);
        });
      }
    }
  }
}
