/**
 * Error codes shared by the broker, the HTTP API and the client.
 *
 * Codes follow Apache Kafka's names so that Kafka users recognise them; each has a fixed
 * HTTP status and says whether a client may retry the request unchanged.
 *
 * @module
 */

/** Every error code Rill can answer with, with its HTTP status and retriability. */
export const ERROR_CODES = {
  INVALID_REQUEST: { status: 400, retriable: false },
  INVALID_TOPIC_EXCEPTION: { status: 400, retriable: false },
  INVALID_PARTITIONS: { status: 400, retriable: false },
  INVALID_REPLICATION_FACTOR: { status: 400, retriable: false },
  INVALID_CONFIG: { status: 400, retriable: false },
  INVALID_RECORD: { status: 400, retriable: false },
  CORRUPT_MESSAGE: { status: 400, retriable: false },
  INVALID_TIMESTAMP: { status: 400, retriable: false },
  INVALID_GROUP_ID: { status: 400, retriable: false },
  OUT_OF_ORDER_SEQUENCE_NUMBER: { status: 400, retriable: false },
  UNSUPPORTED_COMPRESSION_TYPE: { status: 400, retriable: false },
  UNAUTHENTICATED: { status: 401, retriable: false },
  TOPIC_AUTHORIZATION_FAILED: { status: 403, retriable: false },
  GROUP_AUTHORIZATION_FAILED: { status: 403, retriable: false },
  CLUSTER_AUTHORIZATION_FAILED: { status: 403, retriable: false },
  UNKNOWN_TOPIC_OR_PARTITION: { status: 404, retriable: false },
  GROUP_ID_NOT_FOUND: { status: 404, retriable: false },
  NOT_FOUND: { status: 404, retriable: false },
  METHOD_NOT_ALLOWED: { status: 405, retriable: false },
  REQUEST_BODY_TIMEOUT: { status: 408, retriable: true },
  TOPIC_ALREADY_EXISTS: { status: 409, retriable: false },
  REBALANCE_IN_PROGRESS: { status: 409, retriable: true },
  ILLEGAL_GENERATION: { status: 409, retriable: false },
  UNKNOWN_MEMBER_ID: { status: 409, retriable: false },
  FENCED_LEADER_EPOCH: { status: 409, retriable: true },
  NON_EMPTY_GROUP: { status: 409, retriable: false },
  INCONSISTENT_GROUP_PROTOCOL: { status: 409, retriable: false },
  FETCH_SESSION_ID_NOT_FOUND: { status: 409, retriable: false },
  INVALID_FETCH_SESSION_EPOCH: { status: 409, retriable: false },
  INVALID_PRODUCER_EPOCH: { status: 409, retriable: false },
  MESSAGE_TOO_LARGE: { status: 413, retriable: false },
  RECORD_LIST_TOO_LARGE: { status: 413, retriable: false },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retriable: false },
  OFFSET_OUT_OF_RANGE: { status: 416, retriable: false },
  OFFSET_NOT_AVAILABLE: { status: 503, retriable: true },
  THROTTLING_QUOTA_EXCEEDED: { status: 429, retriable: true },
  UNKNOWN_SERVER_ERROR: { status: 500, retriable: false },
  KAFKA_STORAGE_ERROR: { status: 500, retriable: true },
  NOT_LEADER_OR_FOLLOWER: { status: 503, retriable: true },
  NOT_ENOUGH_REPLICAS: { status: 503, retriable: true },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: { status: 503, retriable: true },
  LEADER_NOT_AVAILABLE: { status: 503, retriable: true },
  REQUEST_TIMED_OUT: { status: 503, retriable: true },
  BROKER_NOT_AVAILABLE: { status: 503, retriable: true },
  COORDINATOR_NOT_AVAILABLE: { status: 503, retriable: true },
} as const;

/** A Kafka-style error code name. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The one error type of Rill: a code, an HTTP status, whether a retry may succeed, and
 * optional details (such as the log bounds of an OFFSET_OUT_OF_RANGE) that travel to the
 * client in the error body.
 *
 * @example
 * ```ts
 * throw new RillError("UNKNOWN_TOPIC_OR_PARTITION", 'Topic "orders" does not exist');
 * ```
 */
export class RillError extends Error {
  /** The Kafka-style error code. */
  readonly code: ErrorCode;
  /** The HTTP status this error is answered with. */
  readonly status: number;
  /** Whether the same request may succeed if sent again later. */
  readonly retriable: boolean;
  /** Extra fields that are sent with the error (never secrets or file paths). */
  readonly details: Record<string, unknown>;

  /**
   * @param code the Kafka-style code
   * @param message one sentence saying what is wrong
   * @param details extra fields for the error body
   */
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "RillError";
    this.code = code;
    this.status = ERROR_CODES[code]?.status ?? 500;
    this.retriable = ERROR_CODES[code]?.retriable ?? false;
    this.details = details;
  }

  /** The JSON body the HTTP API answers with. */
  toJSON(): { error: Record<string, unknown> } {
    return {
      error: { code: this.code, message: this.message, retriable: this.retriable, ...this.details },
    };
  }
}

/**
 * Rebuilds a RillError from an HTTP error body, for the client.
 *
 * @param status the HTTP status of the response
 * @param body the parsed JSON body (or anything else, if parsing failed)
 * @returns a RillError carrying the code, message and details of the body
 */
export function errorFromBody(status: number, body: unknown): RillError {
  const err = (body as { error?: Record<string, unknown> } | null)?.error;
  if (err && typeof err.code === "string" && typeof err.message === "string") {
    const { code, message, retriable: _r, ...details } = err;
    const e = new RillError(code as ErrorCode, message, details);
    if (!(code in ERROR_CODES)) {
      Object.assign(e, { status, retriable: status >= 500 && status !== 500 });
    }
    return e;
  }
  const code: ErrorCode = status === 503 || status === 502 || status === 504
    ? "BROKER_NOT_AVAILABLE"
    : status === 429
    ? "THROTTLING_QUOTA_EXCEEDED"
    : "UNKNOWN_SERVER_ERROR";
  return new RillError(code, `The broker answered HTTP ${status} without an error body`);
}
