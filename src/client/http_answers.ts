/**
 * Reading the broker's HTTP answers: JSON bodies, binary bodies read straight into one buffer,
 * error bodies rebuilt into a {@linkcode RillError}, and the minimal produce answer (`204` with
 * its offsets in headers). Web APIs only (`Response`, BYOB readers), as the transport.
 *
 * @module
 */
import { heldHeaderList } from "../protocol/deno_headers.ts";
import { errorFromBody, RillError } from "../protocol/errors.ts";

/**
 * The answer of a raw-batch produce that the broker gave as `204` with its offsets in
 * headers (`Prefer: return=minimal`), in the shape of its JSON answer.
 */
export function minimalAnswer(res: Response, partition: number, base: string): unknown {
  return minimalOf(
    partition,
    base,
    res.headers.get("rill-last-offset"),
    res.headers.get("rill-log-append-time"),
  );
}

function minimalOf(
  partition: number,
  base: string,
  last: string | null,
  appendTime: string | null,
): unknown {
  const baseOffset = Number(base);
  const lastOffset = last === null ? baseOffset : Number(last);
  return {
    partition,
    baseOffset,
    lastOffset,
    recordCount: lastOffset - baseOffset + 1,
    logAppendTime: appendTime === null ? -1 : Number(appendTime),
  };
}

/**
 * {@linkcode minimalAnswer} read from the header list Deno's `Headers` keep (names as
 * received, lower-cased; deno_headers.ts), in one pass: each `get` validates and lower-cases
 * the name it is given, and the first builds an array of every name lower-cased (~1–2.5 µs a
 * produce of the client's, Deno 2.9.6). Undefined when it cannot be read so (another
 * runtime, a header given twice, which `get` would combine, a name with capitals, or no
 * `rill-base-offset`): read it with `get`.
 */
function minimalFromList(res: Response, partition: number): unknown | undefined {
  const list = heldHeaderList(res.headers);
  if (list === null) return undefined;
  let base: string | null = null;
  let last: string | null = null;
  let appendTime: string | null = null;
  for (let i = 0; i < list.length; i++) {
    const entry = list[i];
    if (!Array.isArray(entry)) return undefined;
    const name = entry[0];
    if (name === "rill-base-offset") {
      if (base !== null) return undefined;
      base = entry[1];
    } else if (name === "rill-last-offset") {
      if (last !== null) return undefined;
      last = entry[1];
    } else if (name === "rill-log-append-time") {
      if (appendTime !== null) return undefined;
      appendTime = entry[1];
    } else if (
      typeof name === "string" && (name.length === 16 || name.length === 20) &&
      name.toLowerCase().startsWith("rill-")
    ) return undefined; // one of them with capitals (a Response made in code)
  }
  if (typeof base !== "string" || (last !== null && typeof last !== "string")) return undefined;
  if (appendTime !== null && typeof appendTime !== "string") return undefined;
  return minimalOf(partition, base, last, appendTime);
}

/**
 * The answer of a raw-batch produce whose status is 2xx: the offsets of a minimal answer
 * (`204`, see {@linkcode minimalAnswer}), null for acks=0, else the JSON body.
 *
 * @param res the response, status 2xx
 * @param partition the partition produced to
 * @param acks the request's acks
 * @returns the answer, or a promise of it when a body is to be read
 * @throws {RillError} as {@linkcode readJson}
 */
export function produceAnswer(
  res: Response,
  partition: number,
  acks: string,
): unknown | Promise<unknown> {
  if (res.status === 204 || acks === "0") {
    if (acks !== "0") {
      const answer = minimalFromList(res, partition);
      if (answer !== undefined) return answer;
    }
    const base = res.headers.get("rill-base-offset");
    if (base !== null && acks !== "0") return minimalAnswer(res, partition, base);
    return (res.body?.cancel() ?? Promise.resolve()).then(() => null);
  }
  return readJson(res);
}

/**
 * The error of a request whose fetch failed: REQUEST_TIMED_OUT when the request timeout's
 * signal aborted it, else BROKER_NOT_AVAILABLE (a network failure). Both are retriable.
 *
 * @param e what the fetch threw
 * @param base the broker's base URL
 * @param method the request's method
 * @param url the request's URL
 * @param timedOut whether the request timeout aborted it
 * @param allowanceMs the time it was given (the request timeout, plus a long poll's wait)
 * @returns the error
 */
export function unreachedError(
  e: unknown,
  base: string,
  method: string | undefined,
  url: string,
  timedOut: boolean,
  allowanceMs: number,
): RillError {
  if (timedOut) {
    return new RillError(
      "REQUEST_TIMED_OUT",
      `Broker ${base} did not answer ${method} ${
        url.slice(base.length).split("?")[0]
      } within ${allowanceMs} ms (requestTimeoutMs)`,
    );
  }
  return new RillError(
    "BROKER_NOT_AVAILABLE",
    `Cannot reach broker ${base}: ${e instanceof Error ? e.message.split("\n")[0] : e}`,
  );
}

/**
 * Reads a JSON response body.
 *
 * @param res the response
 * @returns the parsed value
 * @throws {RillError} UNKNOWN_SERVER_ERROR if the body is not JSON
 *
 * @example
 * ```ts
 * const body = await readJson(await transport.request("GET", "/v1/cluster"));
 * ```
 */
export async function readJson(res: Response): Promise<unknown> {
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    // The connection broke while the answer was read: as retriable as a failed request.
    throw new RillError(
      "BROKER_NOT_AVAILABLE",
      `The connection broke while reading the broker's answer: ${
        e instanceof Error ? e.message.split("\n")[0] : e
      }`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new RillError(
      "UNKNOWN_SERVER_ERROR",
      `The broker answered HTTP ${res.status} with a body that is not JSON`,
    );
  }
}

/** Bodies at most this long with a `Content-Length` are read straight into one buffer. */
const DIRECT_READ_LIMIT = 1 << 30;

/**
 * Reads a binary response body into one `Uint8Array`.
 *
 * With a `Content-Length` (the broker's batch answers have one), the body is read with a
 * BYOB reader straight into one buffer of that size: each network chunk is copied once,
 * into its place. (`arrayBuffer()` collects the chunks, then zero-fills a buffer of the
 * total and copies them again: two more passes over every byte, which cost as much as the
 * CRC check of a fetch.) Without one, or where BYOB readers are missing, it falls back to
 * `arrayBuffer()`.
 *
 * @param res the response, body unread
 * @returns the body's bytes
 * @throws {RillError} BROKER_NOT_AVAILABLE (retriable) if the connection breaks or the body
 *   ends before its `Content-Length`
 * @throws {DOMException} AbortError when the request's signal aborts
 * @example
 * ```ts
 * const bytes = await readBytes(await transport.request("GET", path));
 * ```
 */
export async function readBytes(res: Response): Promise<Uint8Array> {
  const body = res.body;
  if (body === null) return new Uint8Array(0);
  const length = Number(res.headers.get("Content-Length") ?? NaN);
  let reader: ReadableStreamBYOBReader | null = null;
  if (Number.isSafeInteger(length) && length >= 0 && length <= DIRECT_READ_LIMIT) {
    try {
      reader = body.getReader({ mode: "byob" });
    } catch {
      // not a byte stream here: read it the portable way
    }
  }
  try {
    if (reader === null) return new Uint8Array(await res.arrayBuffer());
    let buffer = new ArrayBuffer(length);
    let filled = 0;
    while (filled < length) {
      // A BYOB read transfers the buffer it fills: carry on with the one it hands back.
      const { value, done } = await reader.read(new Uint8Array(buffer, filled, length - filled));
      if (done || value === undefined) {
        throw new TypeError(`the body ended after ${filled} of its ${length} bytes`);
      }
      buffer = value.buffer as ArrayBuffer;
      filled += value.byteLength;
    }
    // Read to the end, so that the connection goes back to the pool.
    const { done } = await reader.read(new Uint8Array(1));
    if (!done) throw new TypeError(`the body is longer than its ${length} bytes`);
    return new Uint8Array(buffer);
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    reader?.cancel().catch(() => {});
    throw new RillError(
      "BROKER_NOT_AVAILABLE",
      `The connection broke while reading the broker's answer: ${
        e instanceof Error ? e.message.split("\n")[0] : e
      }`,
    );
  } finally {
    reader?.releaseLock();
  }
}

/**
 * Builds the RillError of an error response.
 *
 * @param res a non-2xx response
 * @returns the error its body describes
 *
 * @example
 * ```ts
 * if (!res.ok) throw await errorOf(res);
 * ```
 */
export async function errorOf(res: Response): Promise<RillError> {
  let body: unknown = null;
  try {
    body = JSON.parse(await res.text());
  } catch {
    // not JSON: errorFromBody falls back to the status
  }
  return errorFromBody(res.status, body);
}
