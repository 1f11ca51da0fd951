/**
 * Request parsing and validation shared by the routes: every failure is a RillError with a
 * one-sentence message, so bad input changes nothing and gets a clear 4xx.
 *
 * @module
 */
import type { Context } from "hono";
import { RillError } from "../protocol/errors.ts";

/**
 * Reads the request body as a JSON object.
 *
 * @param c the request context
 * @param maxBytes the largest body accepted
 * @returns the parsed object
 * @throws {RillError} UNSUPPORTED_MEDIA_TYPE, RECORD_LIST_TOO_LARGE or INVALID_REQUEST
 * @example
 * ```ts
 * const body = await readJsonObject(c, 1024 * 1024);
 * ```
 */
export async function readJsonObject(
  c: Context,
  maxBytes = 8 * 1024 * 1024,
): Promise<Record<string, unknown>> {
  const type = c.req.header("content-type") ?? "application/json";
  if (!/^application\/json\b/i.test(type)) {
    throw new RillError(
      "UNSUPPORTED_MEDIA_TYPE",
      `Content-Type must be application/json, got "${type.slice(0, 100)}"`,
    );
  }
  const text = await readBodyText(c, maxBytes);
  let body: unknown;
  try {
    body = JSON.parse(text === "" ? "{}" : text);
  } catch {
    throw new RillError("INVALID_REQUEST", "The request body is not valid JSON");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new RillError("INVALID_REQUEST", "The request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/**
 * Reads the body as bytes, refusing more than `maxBytes` without buffering past it.
 *
 * @param c the request context
 * @param maxBytes the largest body accepted
 * @returns the body bytes
 * @throws {RillError} RECORD_LIST_TOO_LARGE when the body is larger
 * @example
 * ```ts
 * const bytes = await readBodyBytes(c, 8 * 1024 * 1024);
 * ```
 */
export async function readBodyBytes(c: Context, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(c.req.header("content-length") ?? NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (declared >= 0) {
    // Fast path: the length is known and within the limit (the server frames the body by
    // it), so one read of the whole body beats iterating the stream chunk by chunk.
    const bytes = await c.req.raw.bytes().catch(unreadable);
    if (bytes.length > maxBytes) throw tooLarge(maxBytes);
    return bytes;
  }
  const body = c.req.raw.body;
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > maxBytes) throw tooLarge(maxBytes);
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof RillError) throw e;
    unreadable(e);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let pos = 0;
  for (const ch of chunks) {
    out.set(ch, pos);
    pos += ch.length;
  }
  return out;
}

async function readBodyText(c: Context, maxBytes: number): Promise<string> {
  const bytes = await readBodyBytes(c, maxBytes);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new RillError("INVALID_REQUEST", "The request body is not valid UTF-8");
  }
}

// A body the server cannot read (malformed chunked framing, a client gone mid-body) is the
// client's fault: 400, not a 500 with a stack trace in the log.
function unreadable(_e: unknown): never {
  throw new RillError("INVALID_REQUEST", "The request body could not be read");
}

function tooLarge(maxBytes: number): RillError {
  return new RillError(
    "RECORD_LIST_TOO_LARGE",
    `The request body is larger than the limit of ${maxBytes} bytes`,
    { maxBytes },
  );
}

/** Bounds for {@linkcode intField}. */
export interface IntBounds {
  min?: number;
  max?: number;
}

/**
 * Checks that `value` is an integer within bounds (default: 0 to 2^53-1).
 *
 * @param value the value to check
 * @param name the field name, for the message
 * @param bounds inclusive bounds
 * @returns the integer
 * @throws {RillError} INVALID_REQUEST naming the field
 * @example
 * ```ts
 * intField(3, "partitions", { min: 1 }); // 3
 * ```
 */
export function intField(value: unknown, name: string, bounds: IntBounds = {}): number {
  const min = bounds.min ?? 0;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new RillError("INVALID_REQUEST", `"${name}" must be an integer`);
  }
  if (value < min || value > max) {
    throw new RillError(
      "INVALID_REQUEST",
      `"${name}" must be between ${min} and ${max}, got ${value}`,
    );
  }
  return value;
}

/**
 * Parses a query parameter as an integer within bounds.
 *
 * @param raw the raw query value (undefined when absent)
 * @param name the parameter name, for the message
 * @param fallback the value when absent
 * @param bounds inclusive bounds
 * @returns the integer
 * @throws {RillError} INVALID_REQUEST naming the parameter
 * @example
 * ```ts
 * intQuery(c.req.query("maxWaitMs"), "maxWaitMs", 0, { max: 300_000 });
 * ```
 */
export function intQuery(
  raw: string | undefined,
  name: string,
  fallback: number,
  bounds: IntBounds = {},
): number {
  if (raw === undefined || raw === "") return fallback;
  if (!/^-?\d+$/.test(raw)) {
    throw new RillError("INVALID_REQUEST", `Query parameter "${name}" must be an integer`);
  }
  return intField(Number(raw), name, bounds);
}

/**
 * Parses a partition path parameter.
 *
 * @param raw the path segment
 * @returns the partition index
 * @throws {RillError} INVALID_REQUEST when it is not a non-negative 31-bit integer
 * @example
 * ```ts
 * partitionParam("2"); // 2
 * ```
 */
export function partitionParam(raw: string): number {
  if (!/^\d{1,10}$/.test(raw) || Number(raw) > 0x7fffffff) {
    throw new RillError(
      "INVALID_REQUEST",
      `Partition must be a non-negative integer, got "${raw.slice(0, 50)}"`,
    );
  }
  return Number(raw);
}

/**
 * Parses a required offset query parameter. Negative offsets are returned as they are (the
 * log answers them with OFFSET_OUT_OF_RANGE and its bounds); values beyond 2^53 cannot be
 * represented and are refused.
 *
 * @param raw the raw query value
 * @param name the parameter name, for the message
 * @returns the offset
 * @throws {RillError} INVALID_REQUEST when absent, not an integer, or beyond 2^53
 * @example
 * ```ts
 * offsetQuery("42"); // 42
 * offsetQuery("-1"); // -1: the log answers OFFSET_OUT_OF_RANGE
 * ```
 */
export function offsetQuery(raw: string | undefined, name = "offset"): number {
  if (raw === undefined || raw === "") {
    throw new RillError("INVALID_REQUEST", `Query parameter "${name}" is required`);
  }
  if (!/^-?\d+$/.test(raw)) {
    throw new RillError(
      "INVALID_REQUEST",
      `Query parameter "${name}" must be an integer, got "${raw.slice(0, 50)}"`,
    );
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) {
    throw new RillError(
      "INVALID_REQUEST",
      `Query parameter "${name}" is beyond 2^53 and cannot be represented exactly`,
    );
  }
  return n;
}

/**
 * Parses the `acks` query parameter of a produce: `all` (or `-1`, the default), `1`, `0`.
 *
 * @param raw the raw query value
 * @returns -1 for all, 1 or 0
 * @throws {RillError} INVALID_REQUEST for any other value
 * @example
 * ```ts
 * acksQuery("all"); // -1
 * ```
 */
export function acksQuery(raw: string | undefined): -1 | 0 | 1 {
  switch (raw) {
    case undefined:
    case "":
    case "all":
    case "-1":
      return -1;
    case "1":
      return 1;
    case "0":
      return 0;
    default:
      throw new RillError(
        "INVALID_REQUEST",
        `Query parameter "acks" must be all, 1 or 0, got "${raw.slice(0, 50)}"`,
      );
  }
}
