/**
 * Producer ids for idempotent producers (Kafka's `InitProducerId`), allocated in Deno KV:
 *
 * | key                                                  | value                                            |
 * | ---------------------------------------------------- | ------------------------------------------------ |
 * | `["rill", "producer_ids", "next"]`                   | the next unallocated id (number)                 |
 * | `["rill", "producer_ids", "keys", <principal>, <key>]` | `{ producerId, producerEpoch }` of a producer key |
 *
 * Keys are scoped by the principal that asked (the empty string for callers of the store
 * itself), so one principal cannot fence another's producer by reusing its key.
 *
 * A producer without a key gets a fresh id with epoch 0: the counter is read and moved on
 * in one atomic operation checked on its versionstamp, so two brokers racing never hand
 * out the same id. A producer with a key (Kafka's `transactional.id`; the streams API uses
 * `applicationId` + task) gets the id that key already has and the epoch after the stored
 * one: the older instance's batches are then refused by the partition leaders with
 * INVALID_PRODUCER_EPOCH as soon as the new instance has written to the partition.
 *
 * Epochs are 16-bit in the batch header: past 32,767 the key gets a fresh id at epoch 0.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { ROOT } from "./kv_keys.ts";
import { kvRetry } from "./kv_retry.ts";

/** The largest producer epoch a batch can carry (i16). */
export const MAX_PRODUCER_EPOCH = 0x7fff;
/** The longest producer key accepted. */
export const MAX_PRODUCER_KEY_LENGTH = 512;

/**
 * A producer id and epoch.
 *
 * @example
 * ```ts
 * const { producerId, producerEpoch }: ProducerIdentity = await store.allocate();
 * ```
 */
export interface ProducerIdentity {
  /** the producer id (≥ 0) */
  producerId: number;
  /** the producer epoch (0 … 32767) */
  producerEpoch: number;
}

const nextKey = (): Deno.KvKey => [ROOT, "producer_ids", "next"];
const keyKey = (scope: string, key: string): Deno.KvKey => [
  ROOT,
  "producer_ids",
  "keys",
  scope,
  key,
];

/**
 * Allocates producer ids and epochs in KV.
 *
 * @example
 * ```ts
 * const store = new ProducerIdStore(await Deno.openKv(":memory:"));
 * await store.allocate();                 // { producerId: 0, producerEpoch: 0 } (block 0-999)
 * await store.allocate();                 // { producerId: 1, producerEpoch: 0 } (no KV call)
 * await store.allocate("app-task-0");     // { producerId: 1000, producerEpoch: 0 }
 * await store.allocate("app-task-0");     // { producerId: 1000, producerEpoch: 1 }
 * ```
 */
export class ProducerIdStore {
  /** Ids a store reserves from the KV counter at once for producers without a key. */
  static readonly BLOCK_SIZE = 1000;
  readonly #kv: Deno.Kv;
  #blockNext = 0;
  #blockEnd = 0;
  #reserving: Promise<void> | null = null;

  /** @param kv the cluster's KV */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /**
   * Allocates an identity: a fresh id at epoch 0, or for a key its id with the next epoch.
   *
   * @param producerKey a stable name of the producer (optional)
   * @param scope whose key it is (the principal): the same key in two scopes names two
   *   producers, so one principal cannot fence another's
   * @returns the id and epoch
   * @throws {RillError} INVALID_REQUEST for an empty or over-long key
   */
  async allocate(producerKey?: string, scope = ""): Promise<ProducerIdentity> {
    if (producerKey !== undefined) {
      if (
        typeof producerKey !== "string" || producerKey.length === 0 ||
        producerKey.length > MAX_PRODUCER_KEY_LENGTH
      ) {
        throw new RillError(
          "INVALID_REQUEST",
          `producerKey must be a string of 1 to ${MAX_PRODUCER_KEY_LENGTH} characters`,
        );
      }
    }
    if (producerKey === undefined) return { producerId: await this.#fromBlock(), producerEpoch: 0 };
    for (let attempt = 0; attempt < 1000; attempt++) {
      const result = await kvRetry(async () => {
        // The empty key is never stored (keys are non-empty), so it reads as absent.
        const [next, keyed] = await this.#kv.getMany<[number, ProducerIdentity]>(
          [nextKey(), keyKey(scope, producerKey ?? "")],
        );
        const counter = next.value ?? 0;
        const current = producerKey === undefined ? null : keyed.value;
        const op = this.#kv.atomic().check(next);
        let identity: ProducerIdentity;
        if (current !== null && current.producerEpoch < MAX_PRODUCER_EPOCH) {
          identity = { producerId: current.producerId, producerEpoch: current.producerEpoch + 1 };
        } else {
          identity = { producerId: counter, producerEpoch: 0 };
          op.set(nextKey(), counter + 1);
        }
        if (producerKey !== undefined) op.check(keyed).set(keyKey(scope, producerKey), identity);
        const res = await op.commit();
        return res.ok ? identity : null;
      });
      if (result !== null) return result;
    }
    throw new RillError(
      "REQUEST_TIMED_OUT",
      "Could not allocate a producer id: too much contention on the counter",
    );
  }

  /**
   * A fresh id from this store's block, reserving the next block of the KV counter when it
   * runs out (as Kafka's brokers take producer id blocks from the controller): keyless
   * allocations cost one KV write per BLOCK_SIZE producers, so many producers starting at
   * once do not contend on the counter.
   */
  async #fromBlock(): Promise<number> {
    while (this.#blockNext >= this.#blockEnd) {
      this.#reserving ??= this.#reserveBlock().finally(() => (this.#reserving = null));
      await this.#reserving;
    }
    return this.#blockNext++;
  }

  async #reserveBlock(): Promise<void> {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const start = await kvRetry(async () => {
        const next = await this.#kv.get<number>(nextKey());
        const from = next.value ?? 0;
        const res = await this.#kv.atomic().check(next)
          .set(nextKey(), from + ProducerIdStore.BLOCK_SIZE).commit();
        return res.ok ? from : null;
      });
      if (start !== null) {
        this.#blockNext = start;
        this.#blockEnd = start + ProducerIdStore.BLOCK_SIZE;
        return;
      }
    }
    throw new RillError(
      "REQUEST_TIMED_OUT",
      "Could not reserve producer ids: too much contention on the counter",
    );
  }
}
