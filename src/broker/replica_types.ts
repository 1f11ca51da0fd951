/**
 * The shapes around a partition {@linkcode Replica} (replica.ts): its role, what opening it
 * needs, the ISR change it asks for and a fetch's result.
 *
 * @module
 */
import type { LogConfig, ReadResult } from "../storage/mod.ts";
import type { Replica } from "./replica.ts";

/** What a replica does for its partition. */
export type ReplicaRole = "leader" | "follower" | "observer";

/**
 * Called when the leader wants the ISR changed (the broker writes it to KV and calls
 * {@linkcode Replica.isrChanged}).
 */
export type IsrChangeRequest = (replica: Replica, isr: number[], leaderEpoch: number) => void;

/** What {@linkcode Replica.open} needs. */
export interface ReplicaOptions {
  /** the topic name */
  topic: string;
  /** the topic's id (a re-created topic has a new one) */
  topicId: string;
  /** the partition index */
  partition: number;
  /** the directory of the partition's log */
  dir: string;
  /** the leader epoch this replica appends with */
  leaderEpoch: number;
  /** storage settings from the topic's configs */
  logConfig: Partial<LogConfig>;
  /** the clock (for tests) */
  now?: () => number;
  /** this broker's id (default 0) */
  brokerId?: number;
  /**
   * whether other replicas exist (replication factor > 1, or an observer copy): the high
   * watermark then starts at the log start offset and moves only as replication allows;
   * otherwise it starts at the log end offset
   */
  replicated?: boolean;
}

/** A fetch's result: whole batches plus the offsets a consumer needs. */
export interface FetchResult extends ReadResult {
  /** the offset after the last committed record */
  highWatermark: number;
  /** the first offset still in the log */
  logStartOffset: number;
}
