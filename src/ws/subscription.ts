/**
 * A push subscription of a WebSocket connection (session.ts, `subscribe` frames): the broker
 * keeps a long poll on the subscription's partitions and sends a `records` frame each time any
 * of them has records, advancing each partition past what it sent, so the client does not
 * ask again after each answer. Flow control: each push spends one credit, granted by the
 * client (`subscribe`'s `credit`, then `credit` frames); without credit nothing is read, and a
 * push waits, as fetch answers do, until the socket has drained below `maxUnsentBytes`.
 *
 * A partition whose read fails (`OFFSET_OUT_OF_RANGE`, `NOT_LEADER_OR_FOLLOWER`, …) is pushed
 * with its error and leaves the subscription; an error of the whole read ends it with an
 * `error` frame carrying the subscription's id.
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import type { FetchPartitionRequest } from "../broker/fetch_session.ts";

/** How long one wait of a subscription's long poll lasts before it is renewed. */
const SUBSCRIPTION_WAIT_MS = 30_000;

/** What a subscription needs from its connection. */
export interface SubscriptionHost {
  /** the broker */
  broker: Broker;
  /** whether the connection closed */
  closed(): boolean;
  /** resolves once the bytes queued on the socket are below the connection's bound */
  waitForDrain(): Promise<void>;
  /**
   * Sends a `records` frame.
   *
   * @param parts the partition entries of its header
   * @param payload their bytes, back to back
   * @param bytes how many bytes of records it carries (for the fetch quota)
   */
  push(parts: Record<string, unknown>[], payload: Uint8Array[], bytes: number): void;
}

/** One subscription: see the module comment. */
export class Subscription {
  readonly #host: SubscriptionHost;
  #partitions: FetchPartitionRequest[];
  readonly #maxBytes: number;
  #credit: number;
  #ended = false;
  readonly #abort = new AbortController();
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
    this.#maxBytes = maxBytes;
    this.#credit = credit;
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
    this.#abort.abort();
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
   * Pushes records until the subscription ends, the connection closes or no partition is left.
   *
   * @throws {RillError} an error of the whole read (the caller answers it)
   */
  async run(): Promise<void> {
    while (!this.#over()) {
      const started = Date.now();
      if (this.#credit <= 0) {
        await new Promise<void>((resolve) => this.#wake = resolve);
        continue;
      }
      await this.#host.waitForDrain();
      if (this.#over()) return;
      const result = await this.#host.broker.fetchMany({
        partitions: this.#partitions,
        maxWaitMs: SUBSCRIPTION_WAIT_MS,
        minBytes: 1,
        maxBytes: this.#maxBytes,
        signal: this.#abort.signal,
      });
      try {
        if (this.#over()) return;
        const next: FetchPartitionRequest[] = [];
        const parts: Record<string, unknown>[] = [];
        const payload: Uint8Array[] = [];
        const asked = new Map(this.#partitions.map((p) => [`${p.partition}:${p.topic}`, p]));
        for (const p of result.partitions) {
          const request = asked.get(`${p.partition}:${p.topic}`);
          if (request === undefined) continue;
          asked.delete(`${p.partition}:${p.topic}`);
          if (p.error !== null) {
            parts.push({ topic: p.topic, partition: p.partition, error: p.error.toJSON().error });
            continue;
          }
          next.push(
            p.nextOffset > request.offset ? { ...request, offset: p.nextOffset } : request,
          );
          if (p.bytes.byteLength === 0) continue;
          payload.push(p.bytes);
          parts.push({
            topic: p.topic,
            partition: p.partition,
            nextOffset: p.nextOffset,
            highWatermark: p.highWatermark,
            logStartOffset: p.logStartOffset,
            bytes: p.bytes.byteLength,
          });
        }
        // Partitions the answer did not name stay as they were.
        for (const request of asked.values()) next.push(request);
        this.#partitions = next;
        if (parts.length > 0) {
          this.#credit--;
          this.#host.push(parts, payload, result.totalBytes);
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
