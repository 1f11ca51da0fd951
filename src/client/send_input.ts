/**
 * What a producer's `send()` takes and gives back: its messages' keys, values and headers
 * checked and turned into bytes, its `acks` read, and the {@linkcode SendResult} that
 * collects one call's record offsets as the batches carrying them are acknowledged.
 *
 * @module
 */
import type { RecordHeader } from "../protocol/record_batch.ts";
import type { RecordSink } from "./accumulator.ts";
import { utf8 } from "./utf8.ts";
import type { Acks, Bytes, Message, RecordMetadata } from "./producer_types.ts";

/** Throws a TypeError naming `messages[i].what` unless `v` is a string, bytes or null. */
export function checkBytes(v: unknown, i: number, what: string): void {
  if (v === null || v === undefined || typeof v === "string" || v instanceof Uint8Array) return;
  throw new TypeError(
    `messages[${i}].${what} must be a string, a Uint8Array or null, got ${typeof v}`,
  );
}

/** A key, value or header value as bytes (strings as UTF-8); null stays null. */
export function toBytes(v: Bytes | null | undefined, what: string): Uint8Array | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return utf8(v);
  if (v instanceof Uint8Array) return v;
  throw new TypeError(`${what} must be a string, a Uint8Array or null, got ${typeof v}`);
}

/** A message's headers as record headers (an array value gives one header per element). */
export function toHeaders(h: Message["headers"]): RecordHeader[] | undefined {
  if (h === undefined || h === null) return undefined;
  if (typeof h !== "object") throw new TypeError(`headers must be an object, got ${typeof h}`);
  const out: RecordHeader[] = [];
  for (const name in h) {
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      for (const x of v) out.push({ key: name, value: toBytes(x, `header "${name}"`) });
    } else if (typeof v === "string") {
      // The batch builder writes a string header value as UTF-8 in place (no allocation).
      out.push({ key: name, value: v as unknown as Uint8Array });
    } else out.push({ key: name, value: toBytes(v, `header "${name}"`) });
  }
  return out;
}

/** `acks` as the produce request names it: "all", "1" or "0". */
export function acksParam(a: Acks | undefined): string {
  switch (a) {
    case undefined:
    case "all":
    case -1:
      return "all";
    case 1:
    case "1":
      return "1";
    case 0:
    case "0":
      return "0";
    default:
      throw new TypeError(`acks must be "all", -1, 1 or 0, got ${String(a)}`);
  }
}

/** Collects the results of one send() call. */
export class SendResult implements RecordSink {
  readonly results: RecordMetadata[];
  remaining: number;
  settled = false;
  readonly promise: Promise<RecordMetadata[]>;
  resolve!: (r: RecordMetadata[]) => void;
  reject!: (e: unknown) => void;

  constructor(readonly topic: string, n: number) {
    this.results = new Array(n);
    this.remaining = n;
    this.promise = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    if (n === 0) this.resolve(this.results);
  }

  done(index: number, partition: number, offset: number): void {
    this.results[index] = { topicName: this.topic, partition, offset };
    if (--this.remaining === 0 && !this.settled) {
      this.settled = true;
      this.resolve(this.results);
    }
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(error);
  }
}
