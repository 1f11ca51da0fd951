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
 * await store.allocate();                 // { producerId: 0, producerEpoch: 0 }
 * await store.allocate("app-task-0");     // { producerId: 1, producerEpoch: 0 }
 * await store.allocate("app-task-0");     // { producerId: 1, producerEpoch: 1 }
 * ```
 */
export class ProducerIdStore {
  readonly #kv: Deno.Kv;

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
}
