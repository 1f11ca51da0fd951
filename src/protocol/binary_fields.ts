/**
 * The fields the binary frames of Rill's WebSocket protocol share (ws_produce_frames.ts,
 * ws_records_frames.ts; docs/http-api.md): big-endian u32 and i64, and topic names as ASCII
 * bytes of 1 to 249.
 *
 * @module
 */

/**
 * A binary frame (produce, records) that cannot be read: why, and its id (the request's or the
 * subscription's) when that could be read. Each frame kind has its own subclass.
 */
export class BinaryFrameError extends TypeError {
  /** the frame's id, or null */
  readonly id: number | null;
  /**
   * @param message why
   * @param id the frame's id, if it could be read
   */
  constructor(message: string, id: number | null) {
    super(message);
    this.name = new.target.name;
    this.id = id;
  }
}

/** The longest topic name (as Kafka's). */
export const MAX_TOPIC = 249;

/** The topic names whose bytes were asked for, as ASCII bytes (producers and subscriptions name few topics). */
const topicBytes = new Map<string, Uint8Array | null>();

/**
 * The bytes of a topic name as a binary frame (produce, records) carries it.
 *
 * @param topic the topic name
 * @returns its ASCII bytes (remembered: do not change them), or null when a frame cannot
 *   carry it (empty, longer than 249 or not ASCII: send it in a JSON frame, which the broker
 *   refuses with a clear error)
 * @example
 * ```ts
 * const name = topicBytesOf("orders");
 * if (name !== null) socket.send(encodeProduceFrame(1, name, 0, -1, batch));
 * ```
 */
export function topicBytesOf(topic: string): Uint8Array | null {
  let bytes = topicBytes.get(topic);
  if (bytes !== undefined) return bytes;
  const n = topic.length;
  bytes = n === 0 || n > MAX_TOPIC ? null : new Uint8Array(n);
  for (let i = 0; bytes !== null && i < n; i++) {
    const c = topic.charCodeAt(i);
    if (c >= 0x80) bytes = null;
    else bytes[i] = c;
  }
  if (topicBytes.size >= 4096) topicBytes.clear();
  topicBytes.set(topic, bytes);
  return bytes;
}

/** Writes a u32, big-endian. */
export function writeU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

/** Reads a u32, big-endian. */
export function readU32(m: Uint8Array, at: number): number {
  return (m[at] << 24 | m[at + 1] << 16 | m[at + 2] << 8 | m[at + 3]) >>> 0;
}

/** Writes a safe integer as an i64 (two's complement). */
export function writeI64(out: Uint8Array, at: number, v: number): void {
  const hi = Math.floor(v / 0x100000000);
  writeU32(out, at, hi >>> 0);
  writeU32(out, at + 4, (v - hi * 0x100000000) >>> 0);
}

/** Reads an i64 as a number (exact below 2^53 in magnitude). */
export function readI64(m: Uint8Array, at: number): number {
  const hi = m[at] << 24 | m[at + 1] << 16 | m[at + 2] << 8 | m[at + 3];
  return hi * 0x100000000 + readU32(m, at + 4);
}
