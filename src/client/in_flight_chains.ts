/**
 * An idempotent producer's batches in flight, per partition, in the order they were stamped
 * (producer.ts): which earlier batches a batch refused as out of order waits for, how many
 * were acknowledged since a batch's attempt went out, and how many a partition may still
 * send (the broker remembers a producer's last 5 batches).
 *
 * @module
 */
import type { ProducerBatch } from "./accumulator.ts";
import type { BatchSequence } from "./idempotence.ts";
import type { InFlightLink } from "./direct_send.ts";

/** The chains of one producer, by partition key. */
export class InFlightChains {
  readonly #chains = new Map<string, InFlightChain>();

  /** The chain of a partition key, if it ever had a batch. */
  get(key: string): InFlightChain | undefined {
    return this.#chains.get(key);
  }

  /** Enters a stamped batch in its partition's chain of in-flight idempotent batches. */
  link(batch: ProducerBatch, seq: BatchSequence): InFlightLink {
    const key = batch.key;
    let chain = this.#chains.get(key);
    if (chain === undefined) {
      chain = { next: 0, links: [], acked: 0 };
      this.#chains.set(key, chain);
    }
    const link: InFlightLink = {
      key,
      index: chain.next++,
      ackedBefore: chain.acked,
      seq,
      result: undefined,
      waiters: undefined,
    };
    chain.links.push(link);
    return link;
  }

  /** The unresolved batches of the same partition and identity stamped before `link`. */
  earlier(link: InFlightLink): InFlightLink[] {
    const out: InFlightLink[] = [];
    for (const l of this.#chains.get(link.key)?.links ?? []) {
      if (l === link) break;
      if (
        l.seq.producerId === link.seq.producerId && l.seq.producerEpoch === link.seq.producerEpoch
      ) out.push(l);
    }
    return out;
  }

  /** A link's batch is resolved (acknowledged, or failed for good): it leaves its chain. */
  unlink(link: InFlightLink, ok: boolean): void {
    // A partition's chain stays once empty (one per partition sent to): a producer awaiting
    // each send made and dropped one per send.
    const chain = this.#chains.get(link.key), links = chain?.links;
    if (ok && chain !== undefined) chain.acked++;
    if (links !== undefined) {
      if (links.length === 1 && links[0] === link) links.pop();
      else {
        const i = links.indexOf(link);
        if (i >= 0) links.splice(i, 1);
      }
    }
    link.result = ok;
    const waiters = link.waiters;
    if (waiters !== undefined) {
      link.waiters = undefined;
      for (const w of waiters) w(ok);
    }
  }
}

/** A partition's idempotent batches in flight, and how many were stamped. */
export interface InFlightChain {
  /** the index the next stamped batch gets */
  next: number;
  /** the unresolved batches, in stamping order */
  links: InFlightLink[];
  /** how many of its batches were acknowledged so far */
  acked: number;
}

/** Resolves with a link's result: true once acknowledged, false if it failed for good. */
export function whenSettled(link: InFlightLink): Promise<boolean> {
  if (link.result !== undefined) return Promise.resolve(link.result);
  return new Promise((resolve) => (link.waiters ??= []).push(resolve));
}
