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
import type { ProduceRecord } from "../broker/produce.ts";
import { RillError } from "../protocol/errors.ts";
import {
  decodeBatch,
  nextOffsetOf,
  readBatchHeader,
  type RecordHeader,
  splitBatches,
} from "../protocol/record_batch.ts";

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

function bytesOf(text: string, encoding: Encoding, what: string, where: string): Uint8Array {
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
 * @returns the record
 * @throws {RillError} INVALID_REQUEST naming the record and the field
 * @example
 * ```ts
 * parseRecord({ key: "k", value: "v" }, 0); // { key: bytes, value: bytes, headers: [] }
 * ```
 */
export function parseRecord(raw: unknown, index: number): ProduceRecord {
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
    key = bytesOf(obj.key, encodingOf(obj.keyEncoding, "keyEncoding", where), "the key", where);
  } else if (obj.keyEncoding !== undefined) encodingOf(obj.keyEncoding, "keyEncoding", where);
  let value: Uint8Array | null = null;
  if (obj.value !== null) {
    if (typeof obj.value !== "string") throw bad(`${where}: "value" must be a string or null`);
    value = bytesOf(
      obj.value,
      encodingOf(obj.valueEncoding, "valueEncoding", where),
      "the value",
      where,
    );
  } else if (obj.valueEncoding !== undefined) {
    encodingOf(obj.valueEncoding, "valueEncoding", where);
  }
  const headers: RecordHeader[] = [];
  if (obj.headers !== undefined && obj.headers !== null) {
    if (typeof obj.headers !== "object" || Array.isArray(obj.headers)) {
      throw bad(`${where}: "headers" must be an object of name to string value`);
    }
    const enc = encodingOf(obj.headersEncoding, "headersEncoding", where);
    for (const [name, v] of Object.entries(obj.headers as Record<string, unknown>)) {
      if (v === null) headers.push({ key: name, value: null });
      else if (typeof v === "string") {
        headers.push({ key: name, value: bytesOf(v, enc, `header "${name}"`, where) });
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
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
      throw bad(`${where}: "timestamp" must be a non-negative integer (ms since the epoch)`);
    }
    out.timestamp = t;
  }
  return out;
}

/**
 * Parses a JSON produce body `{"records":[…]}`.
 *
 * @param body the parsed body
 * @returns the records
 * @throws {RillError} INVALID_REQUEST
 * @example
 * ```ts
 * parseJsonRecords({ records: [{ key: "k", value: "v" }] }).length; // 1
 * ```
 */
export function parseJsonRecords(body: Record<string, unknown>): ProduceRecord[] {
  for (const k in body) {
    if (k !== "records") throw bad(`The body has an unknown field "${k.slice(0, 50)}"`);
  }
  const records = body.records;
  if (!Array.isArray(records)) throw bad(`The body must have a "records" array`);
  if (records.length === 0) throw bad(`"records" is empty; send at least one record`);
  const out = new Array<ProduceRecord>(records.length);
  for (let i = 0; i < records.length; i++) out[i] = parseRecord(records[i], i);
  return out;
}

/**
 * Parses an NDJSON produce body: one record object a line, blank lines ignored.
 *
 * @param text the body
 * @returns the records
 * @throws {RillError} INVALID_REQUEST naming the line
 * @example
 * ```ts
 * parseNdjsonRecords('{"value":"a"}\n{"value":"b"}\n').length; // 2
 * ```
 */
export function parseNdjsonRecords(text: string): ProduceRecord[] {
  const out: ProduceRecord[] = [];
  let line = 0;
  for (const raw of text.split("\n")) {
    line++;
    if (raw.trim() === "") continue;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch {
      throw bad(`Line ${line} of the NDJSON body is not valid JSON`);
    }
    out.push(parseRecord(obj, out.length));
  }
  if (out.length === 0) throw bad(`The NDJSON body holds no records`);
  return out;
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
