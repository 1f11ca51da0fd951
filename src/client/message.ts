/**
 * A consumed record. Key, value and header values are bytes (`Uint8Array`, or null), as
 * stored; the `…String()` methods decode them as UTF-8 and `json()` parses the value.
 *
 * A message fetched in the binary format points into the fetched buffer and makes its
 * byte views only when they are first read, so a consumer that does not look at keys or
 * headers does not pay for them. The views share the fetched buffer: copy one (`.slice()`)
 * to keep it without keeping the whole fetch response alive.
 *
 * @module
 */
import type { RecordHeader } from "../protocol/record_batch.ts";

const decoder = new TextDecoder();
const NONE = new Uint8Array(0);

/** Reads a zig-zag varint of `buf` at `pos[0]`, advancing it (headers only: short). */
function varint(buf: Uint8Array, pos: number[]): number {
  let z = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[pos[0]++];
    z += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 128;
  }
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/**
 * One record as a consumer sees it.
 *
 * @example
 * ```ts
 * for await (const message of consumer) {
 *   console.log(message.partition, message.offset, message.keyString(), message.valueString());
 * }
 * ```
 */
export class ConsumedMessage {
  /** the topic */
  readonly topic: string;
  /** the partition */
  readonly partition: number;
  /** the record's offset */
  readonly offset: number;
  /** milliseconds since the epoch */
  readonly timestamp: number;
  #buf: Uint8Array;
  #k: number;
  #kl: number;
  #v: number;
  #vl: number;
  #h: number;
  #hc: number;
  #key: Uint8Array | null | undefined;
  #value: Uint8Array | null | undefined;
  #headerList: RecordHeader[] | undefined;
  #headers: Record<string, Uint8Array | null> | undefined;

  /**
   * Makes a message that points into a fetched batch (the consumer does this; see
   * {@linkcode ConsumedMessage.of} for a message from separate parts).
   *
   * @param topic the topic
   * @param partition the partition
   * @param offset the offset
   * @param timestamp the timestamp
   * @param buf the buffer holding the record
   * @param keyAt where the key starts
   * @param keyLength its length, -1 for null
   * @param valueAt where the value starts
   * @param valueLength its length, -1 for null
   * @param headersAt where the headers start
   * @param headerCount how many headers
   */
  constructor(
    topic: string,
    partition: number,
    offset: number,
    timestamp: number,
    buf: Uint8Array,
    keyAt: number,
    keyLength: number,
    valueAt: number,
    valueLength: number,
    headersAt: number,
    headerCount: number,
  ) {
    this.topic = topic;
    this.partition = partition;
    this.offset = offset;
    this.timestamp = timestamp;
    this.#buf = buf;
    this.#k = keyAt;
    this.#kl = keyLength;
    this.#v = valueAt;
    this.#vl = valueLength;
    this.#h = headersAt;
    this.#hc = headerCount;
  }

  /**
   * Makes a message from separate key, value and headers (e.g. from the JSON format).
   *
   * @param topic the topic
   * @param partition the partition
   * @param offset the offset
   * @param timestamp the timestamp
   * @param key the key bytes, or null
   * @param value the value bytes, or null
   * @param headers the headers
   * @returns the message
   * @example
   * ```ts
   * ConsumedMessage.of("t", 0, 0, Date.now(), null, new TextEncoder().encode("v"), []);
   * ```
   */
  static of(
    topic: string,
    partition: number,
    offset: number,
    timestamp: number,
    key: Uint8Array | null,
    value: Uint8Array | null,
    headers: RecordHeader[],
  ): ConsumedMessage {
    const m = new ConsumedMessage(topic, partition, offset, timestamp, NONE, 0, -1, 0, -1, 0, 0);
    m.#key = key;
    m.#value = value;
    m.#headerList = headers;
    return m;
  }

  /**
   * The key bytes, or null.
   *
   * @example
   * ```ts
   * message.key; // Uint8Array [117, 49]
   * ```
   */
  get key(): Uint8Array | null {
    if (this.#key === undefined) {
      this.#key = this.#kl < 0 ? null : this.#buf.subarray(this.#k, this.#k + this.#kl);
    }
    return this.#key;
  }

  /**
   * The value bytes, or null (a tombstone).
   *
   * @example
   * ```ts
   * message.value?.length;
   * ```
   */
  get value(): Uint8Array | null {
    if (this.#value === undefined) {
      this.#value = this.#vl < 0 ? null : this.#buf.subarray(this.#v, this.#v + this.#vl);
    }
    return this.#value;
  }

  /**
   * Every header, in order (names may repeat).
   *
   * @example
   * ```ts
   * for (const { key, value } of message.headerList) console.log(key, value);
   * ```
   */
  get headerList(): RecordHeader[] {
    if (this.#headerList === undefined) {
      const list: RecordHeader[] = [];
      const buf = this.#buf;
      const pos = [this.#h];
      for (let j = 0; j < this.#hc; j++) {
        const kl = varint(buf, pos);
        const key = decoder.decode(buf.subarray(pos[0], pos[0] + kl));
        pos[0] += kl;
        const vl = varint(buf, pos);
        const value = vl < 0 ? null : buf.subarray(pos[0], pos[0] + vl);
        if (vl > 0) pos[0] += vl;
        list.push({ key, value });
      }
      this.#headerList = list;
    }
    return this.#headerList;
  }

  /**
   * The headers as an object of name → bytes; for a repeated name the last value wins
   * (see `headerList` for all of them).
   *
   * @example
   * ```ts
   * message.headers["trace-id"];
   * ```
   */
  get headers(): Record<string, Uint8Array | null> {
    if (this.#headers === undefined) {
      const h: Record<string, Uint8Array | null> = {};
      for (const { key, value } of this.headerList) h[key] = value;
      this.#headers = h;
    }
    return this.#headers;
  }

  /**
   * The key as UTF-8 text.
   *
   * @returns the text, or null without a key
   * @example
   * ```ts
   * message.keyString(); // "user-1"
   * ```
   */
  keyString(): string | null {
    const k = this.key;
    return k === null ? null : decoder.decode(k);
  }

  /**
   * The value as UTF-8 text.
   *
   * @returns the text, or null for a tombstone
   * @example
   * ```ts
   * message.valueString(); // "hello"
   * ```
   */
  valueString(): string | null {
    const v = this.value;
    return v === null ? null : decoder.decode(v);
  }

  /**
   * The value parsed as JSON.
   *
   * @returns the parsed value, or null for a tombstone
   * @throws {SyntaxError} if the value is not JSON
   * @example
   * ```ts
   * const order = message.json<{ total: number }>();
   * ```
   */
  json<T = unknown>(): T | null {
    const s = this.valueString();
    return s === null ? null : JSON.parse(s) as T;
  }

  /**
   * A header value as UTF-8 text (the last one for a repeated name).
   *
   * @param name the header name
   * @returns the text, or undefined if absent, null if its value is null
   * @example
   * ```ts
   * message.headerString("trace-id");
   * ```
   */
  headerString(name: string): string | null | undefined {
    const v = this.headers[name];
    return v === undefined ? undefined : v === null ? null : decoder.decode(v);
  }

  /**
   * A JSON-friendly form with key, value and headers as text (the shape of
   * `rill consume --format json`).
   *
   * @returns a plain object
   * @example
   * ```ts
   * console.log(JSON.stringify(message));
   * ```
   */
  toJSON(): {
    topic: string;
    partition: number;
    offset: number;
    timestamp: number;
    key: string | null;
    value: string | null;
    headers: Record<string, string | null>;
  } {
    const headers: Record<string, string | null> = {};
    for (const { key, value } of this.headerList) {
      headers[key] = value === null ? null : decoder.decode(value);
    }
    return {
      topic: this.topic,
      partition: this.partition,
      offset: this.offset,
      timestamp: this.timestamp,
      key: this.keyString(),
      value: this.valueString(),
      headers,
    };
  }
}
