/**
 * Names in the consumer group API and their rules:
 *
 * - **group ids**: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..` — the same rule as
 *   topic names (Kafka allows any non-empty string, but a group id travels in URL paths and
 *   in CLI arguments, so Rill keeps to the characters that need no escaping). Otherwise
 *   400 INVALID_GROUP_ID.
 * - **member ids**: 1–64 characters of `[a-zA-Z0-9._-]` (the server hands out UUIDs; a
 *   client may choose its own on join, as KIP-848 allows). Otherwise 400 INVALID_REQUEST.
 * - **topics** in subscriptions and commits: Kafka's topic rule, else 400
 *   INVALID_TOPIC_EXCEPTION.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";

const NAME = /^[a-zA-Z0-9._-]+$/;

/**
 * Checks a group id.
 *
 * @param groupId the id
 * @returns the id
 * @throws {RillError} INVALID_GROUP_ID
 * @example
 * ```ts
 * validateGroupId("billing-v2"); // "billing-v2"
 * ```
 */
export function validateGroupId(groupId: string): string {
  if (
    groupId.length < 1 || groupId.length > 249 || !NAME.test(groupId) || groupId === "." ||
    groupId === ".."
  ) {
    throw new RillError(
      "INVALID_GROUP_ID",
      `Group id "${
        groupId.slice(0, 100)
      }" is invalid: use 1-249 characters of [a-zA-Z0-9._-], not "." or ".."`,
    );
  }
  return groupId;
}

/**
 * Checks a member id.
 *
 * @param memberId the id
 * @returns the id
 * @throws {RillError} INVALID_REQUEST
 */
export function validateMemberId(memberId: unknown): string {
  if (
    typeof memberId !== "string" || memberId.length < 1 || memberId.length > 64 ||
    !NAME.test(memberId)
  ) {
    throw new RillError(
      "INVALID_REQUEST",
      `"memberId" must be 1-64 characters of [a-zA-Z0-9._-]`,
    );
  }
  return memberId;
}

/**
 * Checks a topic name (Kafka's rule).
 *
 * @param topic the name
 * @param field the field it came from, for the message
 * @returns the name
 * @throws {RillError} INVALID_REQUEST when not a string, INVALID_TOPIC_EXCEPTION when invalid
 */
export function validateTopicName(topic: unknown, field = "topic"): string {
  if (typeof topic !== "string") {
    throw new RillError("INVALID_REQUEST", `"${field}" must be a string`);
  }
  if (
    topic.length < 1 || topic.length > 249 || !NAME.test(topic) || topic === "." || topic === ".."
  ) {
    throw new RillError(
      "INVALID_TOPIC_EXCEPTION",
      `Topic name "${topic.slice(0, 100)}" is invalid: use 1-249 characters of [a-zA-Z0-9._-]`,
    );
  }
  return topic;
}

/**
 * Rejects fields of a JSON body that are not in `allowed`.
 *
 * @param body the parsed body
 * @param allowed the known field names
 * @param what the object's name, for the message
 * @throws {RillError} INVALID_REQUEST naming the first unknown field
 */
export function rejectUnknownFields(
  body: Record<string, unknown>,
  allowed: readonly string[],
  what = "request body",
): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) {
      throw new RillError(
        "INVALID_REQUEST",
        `Unknown field "${k.slice(0, 100)}" in the ${what}; allowed: ${allowed.join(", ")}`,
      );
    }
  }
}
