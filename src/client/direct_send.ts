/**
 * A batch the producer sends without a promise (producer.ts `#sendBatch`): the WebSocket
 * connection keeps it as the request's pending entry and calls `resolve` or `reject` once
 * (transport.ts `produceDirect`), and it hands the outcome to its producer; and the link of
 * an idempotent batch in its partition's chain of batches in flight.
 *
 * @module
 */
import type { ProducerBatch } from "./accumulator.ts";
import type { BatchSequence } from "./idempotence.ts";
import type { DirectProduce } from "./transport.ts";

/** An idempotent batch in flight, in its partition's chain (stamping order). */
export interface InFlightLink {
  key: string;
  /** its place in the chain's stamping order */
  index: number;
  /**
   * the chain's acknowledged batches when it was stamped, or last sent again after an
   * out-of-order refusal (producer.ts); its retries after a broken connection leave it
   */
  ackedBefore: number;
  seq: BatchSequence;
  /** true once the batch is acknowledged, false if it failed for good; undefined until then */
  result: boolean | undefined;
  /** those waiting for the result (producer.ts `whenSettled`) */
  waiters: ((ok: boolean) => void)[] | undefined;
}

/** What a {@linkcode DirectSend} tells its producer. */
export interface DirectOwner {
  resolved(send: DirectSend, answer: unknown): void;
  rejected(send: DirectSend, error: unknown): void;
}

/**
 * A batch sent without a promise (Producer `#sendBatch`): the connection keeps it as the
 * request's pending entry and calls `resolve` or `reject` once.
 */
export class DirectSend implements DirectProduce {
  bytes = 0;
  readonly produce = true as const;
  base = "";
  routed: string | undefined = undefined;

  constructor(
    readonly owner: DirectOwner,
    readonly batch: ProducerBatch,
    readonly seq: BatchSequence | null,
    readonly link: InFlightLink | undefined,
    readonly body: Uint8Array,
  ) {}

  resolve(offsets: unknown): void {
    this.owner.resolved(this, offsets);
  }

  reject(error: unknown): void {
    this.owner.rejected(this, error);
  }
}
