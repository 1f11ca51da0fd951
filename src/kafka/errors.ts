/**
 * Kafka's numeric error codes, mapped from the RillError codes the HTTP API answers with
 * (protocol/errors.ts), so both protocols report one failure the same way.
 *
 * @module
 */
import { type ErrorCode, RillError } from "../protocol/errors.ts";

/** Kafka error codes the listener sends. */
export const KAFKA_ERROR = {
  NONE: 0,
  UNKNOWN_SERVER_ERROR: -1,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  BROKER_NOT_AVAILABLE: 8,
  MESSAGE_TOO_LARGE: 10,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  TOPIC_AUTHORIZATION_FAILED: 29,
  GROUP_AUTHORIZATION_FAILED: 30,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  INVALID_TIMESTAMP: 32,
  UNSUPPORTED_SASL_MECHANISM: 33,
  ILLEGAL_SASL_STATE: 34,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 53,
  KAFKA_STORAGE_ERROR: 56,
  SASL_AUTHENTICATION_FAILED: 58,
  UNKNOWN_PRODUCER_ID: 59,
  NON_EMPTY_GROUP: 68,
  GROUP_ID_NOT_FOUND: 69,
  FETCH_SESSION_ID_NOT_FOUND: 70,
  INVALID_FETCH_SESSION_EPOCH: 71,
  FENCED_LEADER_EPOCH: 74,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  OFFSET_NOT_AVAILABLE: 78,
  MEMBER_ID_REQUIRED: 79,
  INVALID_RECORD: 87,
  THROTTLING_QUOTA_EXCEEDED: 89,
  UNKNOWN_TOPIC_ID: 100,
} as const;

/** Rill codes without a Kafka code of the same name. */
const ALIASES: Partial<Record<ErrorCode, number>> = {
  UNAUTHENTICATED: KAFKA_ERROR.SASL_AUTHENTICATION_FAILED,
  NOT_FOUND: KAFKA_ERROR.UNKNOWN_SERVER_ERROR,
  METHOD_NOT_ALLOWED: KAFKA_ERROR.INVALID_REQUEST,
  UNSUPPORTED_MEDIA_TYPE: KAFKA_ERROR.INVALID_REQUEST,
  REQUEST_BODY_TIMEOUT: KAFKA_ERROR.REQUEST_TIMED_OUT,
};

/**
 * The Kafka error code of an error thrown by the broker.
 *
 * @param e anything thrown
 * @returns the Kafka code (-1 UNKNOWN_SERVER_ERROR for what is not a RillError)
 */
export function kafkaCode(e: unknown): number {
  if (!(e instanceof RillError)) return KAFKA_ERROR.UNKNOWN_SERVER_ERROR;
  const direct = (KAFKA_ERROR as Record<string, number>)[e.code];
  if (direct !== undefined) return direct;
  return ALIASES[e.code] ?? KAFKA_ERROR.UNKNOWN_SERVER_ERROR;
}

/**
 * The message to send with an error (versions that carry one).
 *
 * @param e anything thrown
 * @returns one sentence
 */
export function kafkaMessage(e: unknown): string {
  return e instanceof RillError ? e.message : "Internal error";
}
