/**
 * The Rill client: `Rill` with its admin, producer and consumer. Uses only `fetch`.
 *
 * @example
 * ```ts
 * import { Rill } from "./mod.ts";
 * const rill = new Rill({ brokers: ["http://127.0.0.1:8092"] });
 * ```
 *
 * @module
 */
export { Rill, type RillConfig } from "./client.ts";
export {
  Admin,
  type ClusterDescription,
  type GroupDescription,
  type GroupPartitionOffset,
  type GroupResetTo,
  type GroupSummary,
  type ITopicConfig,
  type OffsetSpec,
  type PartitionMetadata,
  type PartitionOffsets,
  type TopicDescription,
  type TopicSummary,
} from "./admin.ts";
export {
  type Acks,
  type Bytes,
  type HeaderValue,
  type Message,
  Producer,
  type ProducerOptions,
  type ProducerRecord,
  type RecordMetadata,
} from "./producer.ts";
export {
  type Batch,
  Consumer,
  type ConsumerOptions,
  type EachBatchPayload,
  type EachMessagePayload,
  type RebalanceListener,
  type RunOptions,
  type SubscribeOptions,
  type TopicPartitionOffset,
} from "./consumer.ts";
export {
  type BrokerLoad,
  type CancelMovesResult,
  ClusterOperations,
  type ClusterStatus,
  type ElectLeadersResult,
  type MovePlanResult,
  type PartitionMove,
} from "./cluster_ops.ts";
export { ConsumedMessage } from "./message.ts";
export { DEFAULT_RETRY, type RetryOptions } from "./retry.ts";
export { BATCH_MEDIA_TYPE, type FetchFn } from "./transport.ts";
export * from "./streams/mod.ts";
