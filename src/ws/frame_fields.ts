/**
 * Reading a WebSocket frame header's fields: acks and bounded integers, each refused with
 * INVALID_REQUEST and a sentence naming the field (session.ts).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { Acks } from "../broker/produce.ts";

/** The acks a produce frame names (-1 when it names none). */
export function acksOf(raw: unknown): Acks {
  switch (raw) {
    case undefined:
    case -1:
    case "all":
    case "-1":
      return -1;
    case 1:
    case "1":
      return 1;
    case 0:
    case "0":
      return 0;
    default:
      throw new RillError(
        "INVALID_REQUEST",
        `"acks" must be all, -1, 1 or 0, got ${JSON.stringify(raw)?.slice(0, 50)}`,
      );
  }
}

/** An integer field of a frame header, within its bounds. */
export function intField(
  raw: unknown,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!Number.isSafeInteger(raw) || (raw as number) < min || (raw as number) > max) {
    throw new RillError(
      "INVALID_REQUEST",
      `"${name}" must be an integer from ${min} to ${max}, got ${
        JSON.stringify(raw)?.slice(0, 50)
      }`,
    );
  }
  return raw as number;
}
