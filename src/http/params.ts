/**
 * Request parsing and validation shared by the routes: every failure is a RillError with a
 * one-sentence message, so bad input changes nothing and gets a clear 4xx.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { RillError } from "../protocol/errors.ts";
import { concatBytes } from "../protocol/bytes.ts";

/** How long a request body may take to arrive when no {@linkcode bodyTimeout} is mounted. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;
const BODY_DEADLINES_KEY = "rillBodyDeadlines";

/** A body read timed by {@linkcode BodyDeadlines}: a node of its list of reads. */
class BodyRead {
  /** set by the sweep when it gives the read up */
  expired = false;
  prev: BodyRead | null = null;
  next: BodyRead | null = null;
  constructor(
    /** when the read is given up (`performance.now()` ms: monotonic, so the list stays in
     * deadline order) */
    readonly deadline: number,
    /** cancels the read (its pending read() resolves done) */
    readonly cancel: () => void,
  ) {}
}

/**
 * The request body reads in progress under one timeout, and the one timer that gives up on
 * those past their deadline: a sweep every quarter of the timeout (10 ms to 1 s), started
 * by a read and stopped by the first sweep that finds none. The reads are a doubly linked
 * list in the order they started (so in deadline order): a read costs a node and two
 * links, no hash of it in a Set (~0.1–0.3 µs a request less, Deno 2.9.6); a timer of its own
 * would cost 5 µs, and starting and stopping the sweep for every request more.
 */
export class BodyDeadlines {
  #first: BodyRead | null = null;
  #last: BodyRead | null = null;
  readonly #sweepMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** @param timeoutMs how long a body may take to arrive */
  constructor(readonly timeoutMs: number) {
    this.#sweepMs = Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4)));
  }

  /** Starts timing a read; `cancel` stops it once past its deadline. */
  start(cancel: () => void): BodyRead {
    const read = new BodyRead(performance.now() + this.timeoutMs, cancel);
    const last = this.#last;
    if (last === null) this.#first = read;
    else {
      last.next = read;
      read.prev = last;
    }
    this.#last = read;
    this.#timer ??= setInterval(() => this.#sweep(), this.#sweepMs);
    return read;
  }

  /** Ends timing a read (again: no-op). */
  end(read: BodyRead): void {
    const { prev, next } = read;
    if (prev === null && this.#first !== read) return; // ended already
    if (prev === null) this.#first = next;
    else prev.next = next;
    if (next === null) this.#last = prev;
    else next.prev = prev;
    read.prev = read.next = null;
  }

  #sweep(): void {
    if (this.#first === null) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = performance.now();
    // Deadlines come in list order: stop at the first one not due.
    let read: BodyRead | null = this.#first;
    while (read !== null && read.deadline <= now) {
      const next: BodyRead | null = read.next;
      if (!read.expired) {
        read.expired = true;
        read.cancel();
      }
      read = next;
    }
  }
}

let defaultDeadlines: BodyDeadlines | null = null;

/**
 * A middleware that gives every request body `ms` milliseconds to arrive, from the moment a
 * route starts reading it ({@linkcode readBodyBytes}); a slower body is answered 408
 * REQUEST_BODY_TIMEOUT, and its read is cancelled, which ends the handler and frees what it
 * held (the body read so far, the body budget of quotas.ts).
 *
 * What Deno.serve (hyper, Deno 2.9.6) bounds by itself, measured with raw sockets: the size
 * of a request head (a connection sending an unterminated header line of 200 KiB is closed;
 * 64 KiB is held), but no time. A connection that sends nothing, a head never finished or
 * dribbled a line a second, an idle keep-alive connection and a declared body never sent
 * were all still open after 650 s; the handler of the last waits on the body for as long.
 * After an answer that left a declared body unread (this 408 included) hyper keeps the
 * connection until the client sends the rest or closes it, and discards what comes once
 * the read was cancelled (a read merely abandoned would take all of it in). Connection time
 * and count are therefore bounded only in front of the broker (a proxy's header and idle
 * timeouts, the process's file limit).
 *
 * @param ms the deadline
 * @returns a Hono middleware
 * @example
 * ```ts
 * app.use("*", bodyTimeout(broker.config.requestBodyTimeoutMs));
 * ```
 */
export function bodyTimeout(ms: number): MiddlewareHandler {
  const deadlines = new BodyDeadlines(ms);
  return async (c, next) => {
    c.set(BODY_DEADLINES_KEY, deadlines);
    await next();
  };
}

/** The most objects and arrays a control-plane JSON body may hold (see readJsonObject). */
export const MAX_JSON_CONTAINERS = 50_000;

/**
 * Refuses a JSON body of more than {@linkcode MAX_JSON_CONTAINERS} objects and arrays before
 * `JSON.parse` builds them: parsing is one uninterruptible call whose cost grows with the
 * number of values, not the bytes (8 MiB of `{},` held the event loop 2–5 s here), and no
 * admin, group or auth body needs that many. Brackets inside strings count too (a bound, not
 * a parse).
 */
function checkJsonContainers(text: string): void {
  if (text.length < MAX_JSON_CONTAINERS) return;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c === 0x7b || c === 0x5b) && ++n > MAX_JSON_CONTAINERS) {
      throw new RillError(
        "RECORD_LIST_TOO_LARGE",
        `The request body holds more than ${MAX_JSON_CONTAINERS} JSON objects and arrays`,
      );
    }
  }
}

/**
 * Reads the request body as a JSON object.
 *
 * @param c the request context
 * @param maxBytes the largest body accepted
 * @returns the parsed object
 * @throws {RillError} UNSUPPORTED_MEDIA_TYPE, RECORD_LIST_TOO_LARGE (over `maxBytes`, or more
 *   than {@linkcode MAX_JSON_CONTAINERS} objects and arrays) or INVALID_REQUEST
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
  return parseJsonObject(await readBodyBytes(c, maxBytes));
}

/**
 * {@linkcode readJsonObject}'s checks of a body already read (the session fetch lane,
 * session_fetch_lane.ts, reads it with {@linkcode readRequestBytes}).
 *
 * @param bytes the body
 * @returns the parsed object
 * @throws {RillError} RECORD_LIST_TOO_LARGE (more than {@linkcode MAX_JSON_CONTAINERS}
 *   objects and arrays) or INVALID_REQUEST (not UTF-8, not JSON, not an object)
 * @example
 * ```ts
 * const body = parseJsonObject(new TextEncoder().encode('{"a":1}'));
 * ```
 */
export function parseJsonObject(bytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new RillError("INVALID_REQUEST", "The request body is not valid UTF-8");
  }
  checkJsonContainers(text);
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
 * Reads the body as bytes, refusing more than `maxBytes` without buffering past it, and
 * giving up on a body that has not fully arrived within the request's body timeout
 * ({@linkcode bodyTimeout}; default 30 s): a client that declares a body and sends it
 * slowly, or never, cannot hold the handler (and its buffered bytes) for ever.
 *
 * @param c the request context
 * @param maxBytes the largest body accepted
 * @returns the body bytes, in a buffer of their own
 * @throws {RillError} RECORD_LIST_TOO_LARGE when the body is larger; REQUEST_BODY_TIMEOUT
 *   (408) when it is too slow
 * @example
 * ```ts
 * const bytes = await readBodyBytes(c, 8 * 1024 * 1024);
 * ```
 */
export function readBodyBytes(c: Context, maxBytes: number): Promise<Uint8Array> {
  const deadlines: BodyDeadlines = c.get(BODY_DEADLINES_KEY) ??
    (defaultDeadlines ??= new BodyDeadlines(DEFAULT_BODY_TIMEOUT_MS));
  return readRequestBytes(c.req.raw, maxBytes, deadlines);
}

/**
 * {@linkcode readBodyBytes} for a request outside Hono (the record lane, record_lane.ts).
 *
 * @param req the request
 * @param maxBytes the largest body accepted
 * @param deadlines the body timeout the read runs under
 * @param declared its Content-Length as a number (NaN when it has none), when the caller
 *   has read it already
 * @returns the body bytes, in a buffer of their own
 * @throws {RillError} as {@linkcode readBodyBytes}
 * @example
 * ```ts
 * const bytes = await readRequestBytes(req, 8 << 20, new BodyDeadlines(30_000));
 * ```
 */
export function readRequestBytes(
  req: Request,
  maxBytes: number,
  deadlines: BodyDeadlines,
  declared = Number(req.headers.get("content-length") ?? NaN),
): Promise<Uint8Array> {
  // Not an async function: a single-record produce's body comes through here, and an async
  // frame and its await cost allocations on every request.
  if (declared > maxBytes) return Promise.reject(tooLarge(maxBytes));
  if (declared === 0 || NO_BODY_METHODS.has(req.method)) return Promise.resolve(new Uint8Array(0));
  if (Number.isSafeInteger(declared) && declared > 0 && declared <= SMALL_BODY_BYTES) {
    return readSmall(req, declared, deadlines);
  }
  return readStreamed(req, maxBytes, deadlines, declared);
}

async function readStreamed(
  req: Request,
  maxBytes: number,
  deadlines: BodyDeadlines,
  declared: number,
): Promise<Uint8Array> {
  const body = req.body;
  if (!body) return new Uint8Array(0);
  // Both loops read through a reader the deadline can cancel: Request.bytes() cannot be
  // stopped, and an abandoned bytes() keeps taking in what the client sends later.
  // Deno.serve gives a byte stream for a body still arriving from the socket; a body it
  // already holds whole when the handler asks (most under load) comes as one chunk.
  return Number.isSafeInteger(declared) && declared > 0 && isByteStream(body)
    ? await readDeclared(body, declared, deadlines)
    : await readChunked(body, maxBytes, deadlines);
}

/**
 * Bodies declared at most this long are read with `Request.bytes()`, raced against the
 * deadline: a reader of its own costs a small body's request ~80–100 µs more CPU (measured
 * on a bare Deno.serve answering 1.1 KB POSTs: 43–94 µs a request against 148–168 µs).
 * What an abandoned read may still take in after a 408 is bounded by the declared length.
 */
const SMALL_BODY_BYTES = 64 * 1024;

/** Methods whose requests Deno.serve gives no body (`req.body` is null). */
const NO_BODY_METHODS = new Set(["GET", "HEAD", "CONNECT"]);

function readSmall(
  req: Request,
  declared: number,
  deadlines: BodyDeadlines,
): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) =>
    readSmallBody(req, declared, deadlines, resolve, reject)
  );
}

/**
 * Whether {@linkcode readSmallBody} reads a body of this declared length (else
 * {@linkcode readRequestBytes} does).
 *
 * @param declared its Content-Length as a number (NaN when it has none)
 * @param maxBytes the largest body accepted
 * @returns whether it is a small body within the limit
 */
export function isSmallBody(declared: number, maxBytes: number): boolean {
  return Number.isSafeInteger(declared) && declared > 0 && declared <= SMALL_BODY_BYTES &&
    declared <= maxBytes;
}

/**
 * Reads a small body ({@linkcode isSmallBody}) as {@linkcode readRequestBytes} does, handing
 * the bytes or the error to a callback instead of settling a promise: the record lane's
 * produce settles its answer's promise from here, one promise and its continuations fewer
 * per single-record produce. Exactly one of the callbacks is called, once; past the deadline
 * the read is abandoned: its end is nobody's business.
 *
 * @param req the request (a POST, its body not touched yet)
 * @param declared its Content-Length, a small body's
 * @param deadlines the body timeout the read runs under
 * @param done receives the body, in a buffer of its own
 * @param failed receives the error (REQUEST_BODY_TIMEOUT, INVALID_REQUEST)
 * @example
 * ```ts
 * readSmallBody(req, 1100, deadlines, (body) => console.log(body.length), console.error);
 * ```
 */
export function readSmallBody(
  req: Request,
  declared: number,
  deadlines: BodyDeadlines,
  done: (body: Uint8Array) => void,
  failed: (e: unknown) => void,
): void {
  // Without touching `req.body`: asked for first, it makes Deno.serve wrap the body it
  // already holds in a ReadableStream that bytes() then drains, ~35 µs more CPU per
  // request (Deno 2.9.6, a bare Deno.serve answering 1 KiB POSTs).
  const read = deadlines.start(() => {
    deadlines.end(read);
    failed(timedOut(deadlines.timeoutMs));
  });
  req.bytes().then((body) => {
    deadlines.end(read);
    if (read.expired) return; // answered already
    if (body.length !== declared) failed(unreadableBody());
    else done(body);
  }, (e) => {
    deadlines.end(read);
    if (read.expired) return;
    failed(e instanceof RillError ? e : unreadableBody());
  });
}

function isByteStream(body: ReadableStream<Uint8Array>): boolean {
  try {
    body.getReader({ mode: "byob" }).releaseLock();
    return true;
  } catch {
    return false;
  }
}

/**
 * A body of a declared length, read by a BYOB reader straight into one buffer: no chunk
 * allocations and no concatenation. Measured on Deno 2.9.6 with 1 MiB bodies through
 * Deno.serve, the server's CPU per MB was 860–1,070 µs this way against 1,260–1,540 µs
 * reading chunks and concatenating them.
 */
async function readDeclared(
  body: ReadableStream<Uint8Array>,
  declared: number,
  deadlines: BodyDeadlines,
): Promise<Uint8Array> {
  let buffer = new ArrayBuffer(declared);
  const reader = body.getReader({ mode: "byob" });
  const pos = await underDeadline(deadlines, reader, async (read) => {
    let pos = 0;
    while (pos < declared) {
      const { value, done } = await reader.read(new Uint8Array(buffer, pos, declared - pos));
      if (read.expired) throw timedOut(deadlines.timeoutMs);
      if (value) buffer = value.buffer as ArrayBuffer; // the read transferred it
      if (done) break;
      pos += value!.length;
    }
    // HTTP framing ends the body at its declared length; read its end all the same, so the
    // stream is closed rather than left half read.
    if (pos === declared && !(await reader.read(new Uint8Array(1))).done) throw unreadableBody();
    return pos;
  });
  if (pos < declared) throw unreadableBody();
  return new Uint8Array(buffer);
}

/** A body of no declared length (chunked) or not a byte stream, read chunk by chunk. */
async function readChunked(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  deadlines: BodyDeadlines,
): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  const total = await underDeadline(deadlines, reader, async (read) => {
    let total = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (read.expired) throw timedOut(deadlines.timeoutMs);
      if (done) return total;
      total += value.length;
      if (total > maxBytes) {
        reader.cancel().catch(() => {});
        throw tooLarge(maxBytes);
      }
      chunks.push(value);
    }
  });
  return concatBytes(chunks, total);
}

/**
 * Runs a body read under the request's deadline, which cancels `reader` when it passes: a
 * RillError passes through, the deadline gives REQUEST_BODY_TIMEOUT, anything else
 * (malformed framing, a client gone mid-body) INVALID_REQUEST.
 */
async function underDeadline<T>(
  deadlines: BodyDeadlines,
  reader: ReadableStreamGenericReader,
  loop: (read: BodyRead) => Promise<T>,
): Promise<T> {
  const read = deadlines.start(() => reader.cancel().catch(() => {}));
  try {
    return await loop(read);
  } catch (e) {
    if (e instanceof RillError) throw e;
    if (read.expired) throw timedOut(deadlines.timeoutMs);
    unreadable(e);
  } finally {
    deadlines.end(read);
  }
}

// A body the server cannot read (malformed chunked framing, a client gone mid-body) is the
// client's fault: 400, not a 500 with a stack trace in the log.
function unreadable(_e: unknown): never {
  throw unreadableBody();
}

function unreadableBody(): RillError {
  return new RillError("INVALID_REQUEST", "The request body could not be read");
}

function timedOut(ms: number): RillError {
  return new RillError(
    "REQUEST_BODY_TIMEOUT",
    `The request body did not arrive within ${ms} ms`,
    { timeoutMs: ms },
  );
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

/** Whether `raw` is 1 to `max` ASCII digits (`/^\d{1,max}$/` without a RegExp run). */
function isDigits(raw: string, max: number): boolean {
  if (raw.length === 0 || raw.length > max) return false;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charCodeAt(i);
    if (ch < 48 || ch > 57) return false;
  }
  return true;
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
  if (!isDigits(raw, 10) || Number(raw) > 0x7fffffff) {
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
