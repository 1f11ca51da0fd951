/**
 * Offsets are 64-bit in Kafka and JSON numbers in Rill's API: exact only up to 2^53 - 1.
 * Every offset entering the client (from a user or from a broker) passes through
 * {@linkcode toOffset} so none is silently rounded.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";

/**
 * Checks a user-supplied offset and turns it into a number.
 *
 * @param value a non-negative integer as number, bigint or decimal string
 * @param what what the offset is, for the message
 * @returns the offset as a safe integer
 * @throws {RangeError} if it is negative, fractional, or beyond 2^53 - 1
 * @example
 * ```ts
 * toOffset("42"); // 42
 * toOffset(2n ** 60n); // throws RangeError
 * ```
 */
export function toOffset(value: number | bigint | string, what = "offset"): number {
  let n: number;
  if (typeof value === "bigint") {
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`The ${what} ${value} is beyond 2^53 - 1, which Rill cannot represent`);
    }
    n = Number(value);
  } else if (typeof value === "string") {
    if (!/^\d+$/.test(value)) {
      throw new RangeError(`The ${what} must be a non-negative integer, got "${value}"`);
    }
    n = Number(value);
    if (!Number.isSafeInteger(n)) {
      throw new RangeError(`The ${what} ${value} is beyond 2^53 - 1, which Rill cannot represent`);
    }
  } else n = value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`The ${what} must be a non-negative safe integer, got ${String(value)}`);
  }
  return n;
}

/**
 * Checks an offset received from a broker (a JSON number or a header).
 *
 * @param value what the broker sent
 * @param what the field, for the message
 * @returns the offset
 * @throws {RillError} UNKNOWN_SERVER_ERROR if it is not a safe integer ≥ -1
 * @example
 * ```ts
 * brokerOffset(7, "nextOffset"); // 7
 * ```
 */
export function brokerOffset(value: unknown, what: string): number {
  const n = typeof value === "string" && value !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < -1) {
    throw new RillError(
      "UNKNOWN_SERVER_ERROR",
      `The broker sent ${what} = ${String(value)}, not an integer within 2^53`,
    );
  }
  return n;
}
