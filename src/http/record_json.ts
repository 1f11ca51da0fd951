/**
 * Records as JSON, both ways: the produce body's record objects into
 * {@linkcode ProduceRecord}s (validated field by field), and fetched batches into the fetch
 * response's record objects.
 *
 * A record object:
 *
 * ```json
 * {"key": "user-1", "value": "hello", "headers": {"source": "web"},
 *  "partition": 0, "timestamp": 1700000000000,
 *  "keyEncoding": "utf8", "valueEncoding": "base64", "headersEncoding": "utf8"}
 * ```
 *
 * `key`, `value` and header values are UTF-8 text unless their encoding says `base64`.
 * Fetched records carry text where the bytes are valid UTF-8 and otherwise base64 with the
 * matching `…Encoding: "base64"` field; `?encoding=base64` on a fetch makes every key,
 * value and header value base64 (each record then says so).
 *
 * @module
 */
import type { ProduceRecord, RecordOffset } from "../broker/produce.ts";
import { RillError } from "../protocol/errors.ts";
import {
  decodeBatch,
  nextOffsetOf,
  readBatchHeader,
  type RecordHeader,
  splitBatches,
} from "../protocol/record_batch.ts";
import { TimeSlice } from "../broker/time_slice.ts";
import { NO_TIMESTAMP } from "../broker/batch_checks.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

const RECORD_FIELDS = new Set([
  "key",
  "value",
  "headers",
  "partition",
  "timestamp",
  "keyEncoding",
  "valueEncoding",
  "headersEncoding",
]);

type Encoding = "utf8" | "base64";

function bad(message: string): RillError {
  return new RillError("INVALID_REQUEST", message);
}

function encodingOf(raw: unknown, field: string, where: string): Encoding {
  if (raw === undefined || raw === "utf8" || raw === "utf-8") return "utf8";
  if (raw === "base64") return "base64";
  throw bad(`${where}: "${field}" must be "utf8" or "base64"`);
}

const EMPTY = new Uint8Array(0);
const NO_HEADERS: RecordHeader[] = Object.freeze([]) as unknown as RecordHeader[];
const ARENA_CHUNK = 64 * 1024;

/**
 * Where the key, value and header bytes of one request's records are written: views into a
 * few shared 64 KiB buffers rather than a buffer each (a request of 100,000 records would
 * otherwise give the garbage collector 100,000 backing stores to track: pauses of 100–250 ms
 * were measured with four such requests at once).
 */
export class RecordBytes {
  #chunk = new Uint8Array(0);
  #at = 0;

  /**
   * The UTF-8 bytes of a string, or of base64 text.
   *
   * @param text the text
   * @param encoding how the text holds the bytes
   * @returns a view of the bytes
   * @throws {SyntaxError} when base64 text is not base64
   */
  bytes(text: string, encoding: Encoding): Uint8Array {
    if (text === "") return EMPTY;
    if (encoding === "base64") {
      const decoded = fromBase64(text);
      return decoded.length === 0 ? EMPTY : this.#copy(decoded);
    }
    const most = text.length * 3;
    if (most > ARENA_CHUNK / 4) return encoder.encode(text);
    this.#room(most);
    const { written } = encoder.encodeInto(text, this.#chunk.subarray(this.#at));
    const out = this.#chunk.subarray(this.#at, this.#at + written);
    this.#at += written;
    return out;
  }

  #copy(bytes: Uint8Array): Uint8Array {
    if (bytes.length > ARENA_CHUNK / 4) return bytes;
    this.#room(bytes.length);
    this.#chunk.set(bytes, this.#at);
    const out = this.#chunk.subarray(this.#at, this.#at + bytes.length);
    this.#at += bytes.length;
    return out;
  }

  #room(n: number): void {
    if (this.#chunk.length - this.#at >= n) return;
    this.#chunk = new Uint8Array(ARENA_CHUNK);
    this.#at = 0;
  }
}

function bytesOf(
  text: string,
  encoding: Encoding,
  what: string,
  where: string,
  arena: RecordBytes | undefined,
): Uint8Array {
  if (arena !== undefined) {
    try {
      return arena.bytes(text, encoding);
    } catch {
      throw bad(`${where}: ${what} is not valid base64`);
    }
  }
  if (encoding === "utf8") return encoder.encode(text);
  try {
    return fromBase64(text);
  } catch {
    throw bad(`${where}: ${what} is not valid base64`);
  }
}

/**
 * Parses one record object of a produce body.
 *
 * @param raw the parsed JSON value
 * @param index the record's position, for messages
 * @param arena where to write the record's bytes (default: a buffer each)
 * @returns the record
 * @throws {RillError} INVALID_REQUEST naming the record and the field
 * @example
 * ```ts
 * parseRecord({ key: "k", value: "v" }, 0); // { key: bytes, value: bytes, headers: [] }
 * ```
 */
export function parseRecord(raw: unknown, index: number, arena?: RecordBytes): ProduceRecord {
  const where = `Record ${index}`;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw bad(`${where} must be a JSON object`);
  }
  const obj = raw as Record<string, unknown>;
  for (const k in obj) {
    if (!RECORD_FIELDS.has(k)) throw bad(`${where} has an unknown field "${k.slice(0, 50)}"`);
  }
  if (!("value" in obj)) throw bad(`${where} has no "value" (use null for a tombstone)`);
  let key: Uint8Array | null = null;
  if (obj.key !== undefined && obj.key !== null) {
    if (typeof obj.key !== "string") throw bad(`${where}: "key" must be a string or null`);
    const enc = encodingOf(obj.keyEncoding, "keyEncoding", where);
    key = bytesOf(obj.key, enc, "the key", where, arena);
  } else if (obj.keyEncoding !== undefined) encodingOf(obj.keyEncoding, "keyEncoding", where);
  let value: Uint8Array | null = null;
  if (obj.value !== null) {
    if (typeof obj.value !== "string") throw bad(`${where}: "value" must be a string or null`);
    value = bytesOf(
      obj.value,
      encodingOf(obj.valueEncoding, "valueEncoding", where),
      "the value",
      where,
      arena,
    );
  } else if (obj.valueEncoding !== undefined) {
    encodingOf(obj.valueEncoding, "valueEncoding", where);
  }
  let headers = NO_HEADERS;
  if (obj.headers !== undefined && obj.headers !== null) {
    headers = [];
    if (typeof obj.headers !== "object" || Array.isArray(obj.headers)) {
      throw bad(`${where}: "headers" must be an object of name to string value`);
    }
    const enc = encodingOf(obj.headersEncoding, "headersEncoding", where);
    for (const [name, v] of Object.entries(obj.headers as Record<string, unknown>)) {
      if (v === null) headers.push({ key: name, value: null });
      else if (typeof v === "string") {
        headers.push({ key: name, value: bytesOf(v, enc, `header "${name}"`, where, arena) });
      } else throw bad(`${where}: header "${name.slice(0, 50)}" must be a string or null`);
    }
  }
  const out: ProduceRecord = { key, value, headers };
  if (obj.partition !== undefined) {
    const p = obj.partition;
    if (typeof p !== "number" || !Number.isInteger(p) || p < 0 || p > 0x7fffffff) {
      throw bad(`${where}: "partition" must be a non-negative integer`);
    }
    out.partition = p;
  }
  if (obj.timestamp !== undefined) {
    const t = obj.timestamp;
    if (typeof t !== "number" || !Number.isSafeInteger(t)) {
      throw bad(`${where}: "timestamp" must be an integer (ms since the epoch, or -1 for none)`);
    }
    if (t < NO_TIMESTAMP) {
      throw new RillError(
        "INVALID_TIMESTAMP",
        `${where}: "timestamp" must be ms since the epoch (>= 0), or -1 for none`,
      );
    }
    out.timestamp = t;
  }
  return out;
}

/** The most records one JSON or NDJSON produce request may hold (see `BrokerConfig`). */
export const DEFAULT_MAX_REQUEST_RECORDS = 100_000;

function tooMany(maxRecords: number): RillError {
  return new RillError(
    "RECORD_LIST_TOO_LARGE",
    `The request holds more than ${maxRecords} records; send at most ${maxRecords} a request (or raw batches as ${"application/vnd.rill.batch"})`,
    { maxRecords },
  );
}

const INVALID_JSON = "The request body is not valid JSON";
const NOT_UTF8 = "The request body is not valid UTF-8";

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(body: Uint8Array, i: number): number {
  while (i < body.length && isSpace(body[i])) i++;
  return i;
}

/**
 * The index just past the JSON value starting at `i` (which is not white space): a string,
 * an object or array found by its brackets (strings skipped), or a scalar up to the next
 * delimiter. Only the span is found here; the value is checked by `JSON.parse` of the span.
 * (UTF-8 bytes of other characters never equal these ASCII ones.)
 */
function valueEnd(body: Uint8Array, i: number): number {
  const first = body[i];
  if (first === 0x22) return stringEnd(body, i);
  if (first !== 0x7b && first !== 0x5b) {
    while (i < body.length) {
      const c = body[i];
      if (c === 0x2c || c === 0x5d || c === 0x7d || isSpace(c)) break;
      i++;
    }
    return i;
  }
  let depth = 0;
  while (i < body.length) {
    const c = body[i];
    if (c === 0x22) {
      i = stringEnd(body, i);
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (--depth === 0) return i + 1;
    }
    i++;
  }
  throw bad(INVALID_JSON);
}

/** The index just past the string whose opening quote is at `i`. */
function stringEnd(body: Uint8Array, i: number): number {
  for (i++; i < body.length; i++) {
    const c = body[i];
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  throw bad(INVALID_JSON);
}

/** `JSON.parse` of the UTF-8 text of `body[from, to)`; `what` is the error when not JSON. */
function parseSpan(body: Uint8Array, from: number, to: number, what: string): unknown {
  let text: string;
  try {
    text = strictDecoder.decode(body.subarray(from, to));
  } catch {
    throw bad(NOT_UTF8);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw bad(what);
  }
}

/**
 * Parses a JSON produce body `{"records":[…]}` record by record, in turns of a few
 * milliseconds on the event loop (time_slice.ts): the body's top level is walked here and
 * each record object is decoded and parsed from its own span, so no request builds a string
 * or a tree of the whole body (`JSON.parse` of a 7.5 MB body of empty objects held the loop
 * for 1–5 s here). A body with more than `maxRecords` records is refused at the first record
 * too many, before anything is appended.
 *
 * @param body the body's bytes (UTF-8)
 * @param maxRecords the most records accepted
 * @param slice the work's turns on the event loop
 * @returns the records
 * @throws {RillError} INVALID_REQUEST naming the record; RECORD_LIST_TOO_LARGE (413)
 * @example
 * ```ts
 * const body = new TextEncoder().encode('{"records":[{"key":"k","value":"v"}]}');
 * (await parseJsonRecords(body)).length; // 1
 * ```
 */
export async function parseJsonRecords(
  body: Uint8Array,
  maxRecords = DEFAULT_MAX_REQUEST_RECORDS,
  slice: TimeSlice = new TimeSlice(),
): Promise<ProduceRecord[]> {
  let i = skipSpace(body, 0);
  if (body[i] !== 0x7b) {
    if (i >= body.length) throw bad(INVALID_JSON);
    throw bad("The request body must be a JSON object");
  }
  let out: ProduceRecord[] | null = null;
  const arena = new RecordBytes();
  i = skipSpace(body, i + 1);
  if (body[i] === 0x7d) i++;
  else {
    for (;;) {
      if (body[i] !== 0x22) throw bad(INVALID_JSON);
      const keyEnd = stringEnd(body, i);
      const key = parseSpan(body, i, keyEnd, INVALID_JSON) as string;
      if (key !== "records") throw bad(`The body has an unknown field "${key.slice(0, 50)}"`);
      if (out !== null) throw bad(`The body has "records" twice`);
      i = skipSpace(body, keyEnd);
      if (body[i] !== 0x3a) throw bad(INVALID_JSON);
      i = skipSpace(body, i + 1);
      if (i >= body.length) throw bad(INVALID_JSON);
      if (body[i] !== 0x5b) {
        parseSpan(body, i, valueEnd(body, i), INVALID_JSON);
        throw bad(`The body must have a "records" array`);
      }
      out = [];
      i = skipSpace(body, i + 1);
      if (body[i] === 0x5d) i++;
      else {
        for (;;) {
          if ((out.length & 31) === 0 && slice.due) await slice.yield();
          if (out.length >= maxRecords) throw tooMany(maxRecords);
          if (i >= body.length) throw bad(INVALID_JSON);
          const end = valueEnd(body, i);
          const where = `Record ${out.length} is not valid JSON`;
          out.push(parseRecord(parseSpan(body, i, end, where), out.length, arena));
          i = skipSpace(body, end);
          const c = body[i];
          i = skipSpace(body, i + 1);
          if (c === 0x5d) break;
          if (c !== 0x2c) throw bad(INVALID_JSON);
        }
      }
      const c = body[i];
      i = skipSpace(body, i + 1);
      if (c === 0x7d) break;
      if (c !== 0x2c) throw bad(INVALID_JSON);
    }
  }
  if (skipSpace(body, i) < body.length) throw bad(INVALID_JSON);
  if (out === null) throw bad(`The body must have a "records" array`);
  if (out.length === 0) throw bad(`"records" is empty; send at least one record`);
  return out;
}

/**
 * Parses an NDJSON produce body: one record object a line, blank lines ignored; in turns on
 * the event loop as {@linkcode parseJsonRecords}.
 *
 * @param body the body's bytes (UTF-8)
 * @param maxRecords the most records accepted
 * @param slice the work's turns on the event loop
 * @returns the records
 * @throws {RillError} INVALID_REQUEST naming the line; RECORD_LIST_TOO_LARGE (413)
 * @example
 * ```ts
 * const body = new TextEncoder().encode('{"value":"a"}\n{"value":"b"}\n');
 * (await parseNdjsonRecords(body)).length; // 2
 * ```
 */
export async function parseNdjsonRecords(
  body: Uint8Array,
  maxRecords = DEFAULT_MAX_REQUEST_RECORDS,
  slice: TimeSlice = new TimeSlice(),
): Promise<ProduceRecord[]> {
  const out: ProduceRecord[] = [];
  const arena = new RecordBytes();
  let line = 0;
  for (let from = 0; from < body.length;) {
    if ((line & 31) === 0 && slice.due) await slice.yield();
    let to = body.indexOf(0x0a, from);
    if (to < 0) to = body.length;
    line++;
    const next = to + 1;
    if (skipSpace(body, from) >= to) {
      from = next;
      continue;
    }
    if (out.length >= maxRecords) throw tooMany(maxRecords);
    const obj = parseSpan(body, from, to, `Line ${line} of the NDJSON body is not valid JSON`);
    out.push(parseRecord(obj, out.length, arena));
    from = next;
  }
  if (out.length === 0) throw bad(`The NDJSON body holds no records`);
  return out;
}

/**
 * The JSON text of a produce answer's `offsets` array, built in turns on the event loop
 * (a produce may hold {@linkcode DEFAULT_MAX_REQUEST_RECORDS} records).
 *
 * @param offsets where each record landed
 * @param slice the work's turns on the event loop
 * @returns `[{"partition":…,"offset":…,"timestamp":…},…]`
 * @example
 * ```ts
 * await offsetsToJson([{ partition: 0, offset: 7, timestamp: 1 }]);
 * // '[{"partition":0,"offset":7,"timestamp":1}]'
 * ```
 */
export async function offsetsToJson(
  offsets: readonly RecordOffset[],
  slice: TimeSlice = new TimeSlice(),
): Promise<string> {
  const parts = new Array<string>(offsets.length);
  for (let i = 0; i < offsets.length; i++) {
    if ((i & 255) === 0 && slice.due) await slice.yield();
    const o = offsets[i];
    parts[i] = `{"partition":${o.partition},"offset":${o.offset},"timestamp":${o.timestamp}}`;
  }
  return `[${parts.join(",")}]`;
}

/** A fetched record as JSON. */
export interface JsonRecord {
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string | null>;
  keyEncoding?: "base64";
  valueEncoding?: "base64";
  headersEncoding?: "base64";
}

/**
 * Decodes fetched batches into JSON records, skipping those below `fromOffset` (the first
 * batch may start before it).
 *
 * @param bytes whole batches as read from the log
 * @param fromOffset the first offset wanted
 * @param forceBase64 encode every key, value and header value as base64
 * @returns the records, in offset order
 * @example
 * ```ts
 * batchesToJson(encodeBatch([{ value: new TextEncoder().encode("hi") }]), 0)[0].value; // "hi"
 * ```
 */
export function batchesToJson(
  bytes: Uint8Array,
  fromOffset: number,
  forceBase64 = false,
): JsonRecord[] {
  const out: JsonRecord[] = [];
  for (const batch of splitBatches(bytes)) {
    // Skip a batch wholly before the offset without decoding (or decompressing) it.
    if (nextOffsetOf(readBatchHeader(batch)) <= fromOffset) continue;
    for (const r of decodeBatch(batch).records) {
      if (r.offset < fromOffset) continue;
      out.push(recordToJson(r.offset, r.timestamp, r.key, r.value, r.headers, forceBase64));
    }
  }
  return out;
}

/** A JSON fetch answer's records, cut to its size limit. */
export interface JsonRecordsText {
  /** the records array as JSON text, `[…]` */
  text: string;
  /** how many records it holds */
  count: number;
  /** the offset after its last record (`fromOffset` when it holds none) */
  nextOffset: number;
}

/**
 * Decodes fetched batches into the JSON text of a fetch answer's `records` array, keeping it
 * within `maxBytes` of JSON: records are added in offset order while the text stays within
 * the limit, and the first record always (so a record larger than the limit still makes
 * progress, as Kafka answers one whole first batch over `fetch.max.bytes`). The caller
 * answers `nextOffset` so the client goes on from the first record left out.
 *
 * @param bytes whole batches as read from the log
 * @param fromOffset the first offset wanted
 * @param maxBytes the most JSON bytes of records (counted as UTF-16 units, which is ≤ the UTF-8
 *   bytes for text that is ASCII after JSON escaping, and close otherwise)
 * @param forceBase64 encode every key, value and header value as base64
 * @returns the text, its record count and the next offset
 * @example
 * ```ts
 * jsonRecordsWithin(encodeBatch([{ value: null }]), 0, 1048576).count; // 1
 * ```
 */
export function jsonRecordsWithin(
  bytes: Uint8Array,
  fromOffset: number,
  maxBytes: number,
  forceBase64 = false,
): JsonRecordsText {
  const parts: string[] = [];
  let size = 2;
  let nextOffset = fromOffset;
  outer: for (const batch of splitBatches(bytes)) {
    // Skip a batch wholly before the offset without decoding (or decompressing) it.
    if (nextOffsetOf(readBatchHeader(batch)) <= fromOffset) continue;
    for (const r of decodeBatch(batch).records) {
      if (r.offset < fromOffset) continue;
      const json = JSON.stringify(
        recordToJson(r.offset, r.timestamp, r.key, r.value, r.headers, forceBase64),
      );
      const more = json.length + (parts.length > 0 ? 1 : 0);
      if (parts.length > 0 && size + more > maxBytes) break outer;
      parts.push(json);
      size += more;
      nextOffset = r.offset + 1;
    }
  }
  return { text: `[${parts.join(",")}]`, count: parts.length, nextOffset };
}

/**
 * One decoded record as JSON.
 *
 * @param offset the offset
 * @param timestamp the timestamp
 * @param key the key bytes
 * @param value the value bytes
 * @param headers the headers
 * @param forceBase64 base64 everything
 * @returns the JSON record
 * @example
 * ```ts
 * recordToJson(7, 0, null, new Uint8Array([0xff]), [], false).valueEncoding; // "base64"
 * ```
 */
export function recordToJson(
  offset: number,
  timestamp: number,
  key: Uint8Array | null,
  value: Uint8Array | null,
  headers: RecordHeader[],
  forceBase64: boolean,
): JsonRecord {
  const out: JsonRecord = { offset, timestamp, key: null, value: null, headers: {} };
  if (key !== null) {
    const text = forceBase64 ? null : textOrNull(key);
    if (text === null) {
      out.key = toBase64(key);
      out.keyEncoding = "base64";
    } else out.key = text;
  }
  if (value !== null) {
    const text = forceBase64 ? null : textOrNull(value);
    if (text === null) {
      out.value = toBase64(value);
      out.valueEncoding = "base64";
    } else out.value = text;
  }
  if (headers.length > 0) {
    let base64 = forceBase64;
    const texts: (string | null)[] = [];
    if (!base64) {
      for (const h of headers) {
        if (h.value === null) {
          texts.push(null);
          continue;
        }
        const t = textOrNull(h.value);
        if (t === null) {
          base64 = true;
          break;
        }
        texts.push(t);
      }
    }
    for (let i = 0; i < headers.length; i++) {
      const v = headers[i].value;
      const name = headers[i].key;
      const text = v === null ? null : base64 ? toBase64(v) : texts[i];
      // A header named "__proto__" must become a field, not the object's prototype.
      if (name === "__proto__") {
        Object.defineProperty(out.headers, name, { value: text, enumerable: true, writable: true });
      } else out.headers[name] = text;
    }
    if (base64) out.headersEncoding = "base64";
  }
  return out;
}

function textOrNull(bytes: Uint8Array): string | null {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

interface Base64Uint8Array {
  toBase64(): string;
}

/**
 * Base64 of bytes (the runtime's own encoder).
 *
 * @param bytes the bytes
 * @returns standard base64 with padding
 * @example
 * ```ts
 * toBase64(new Uint8Array([0xff, 0x00])); // "/wA="
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  return (bytes as unknown as Base64Uint8Array).toBase64();
}

/**
 * Bytes of a standard base64 string.
 *
 * @param text the base64 text
 * @returns the bytes
 * @throws {SyntaxError} when the text is not base64
 * @example
 * ```ts
 * fromBase64("/wA="); // Uint8Array [255, 0]
 * ```
 */
export function fromBase64(text: string): Uint8Array {
  return (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64(text);
}
