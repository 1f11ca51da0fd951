/**
 * The binary `records` push frame of Rill's WebSocket protocol (docs/http-api.md, "Binary
 * records frames"), shared by the broker (src/ws/session.ts) and the client
 * (src/client/ws_connection.ts): a push subscription's `records` frame laid out as fixed
 * fields instead of a JSON header, so that a push costs the broker no JSON text and the client
 * no `JSON.parse`. The broker sends it only to a client whose `hello` listed `"records"` in its
 * `"binary"`; others get the JSON frame. A push naming a partition with an error goes as the
 * JSON frame (it carries the error object), whatever the client asked.
 *
 * All integers are big-endian.
 *
 * ```
 * records push (broker → client), 14 bytes, N partition entries, then the batches:
 *   0   u32  0xFFFFFFFB
 *   4   u64  id: the subscription's (its subscribe frame's id, below 2^53)
 *   12  u16  N, the partitions named (1 to 65,535)
 *   then per partition, 1 + T + 32 bytes:
 *       u8   T, the topic name's length (1 to 249)
 *       T    the topic name (ASCII)
 *       u32  partition
 *       i64  nextOffset
 *       i64  highWatermark
 *       i64  logStartOffset
 *       u32  B, the bytes of its batches
 *   then each partition's batches (B bytes each, in the order of the entries), to the end
 * ```
 *
 * @module
 */
import {
  BinaryFrameError,
  readI64,
  readU32,
  topicBytesOf,
  writeI64,
  writeU32,
} from "./binary_fields.ts";

/** The marker of a binary `records` push. */
export const WS_RECORDS = 0xfffffffb;

/** What a client's `hello` lists in `"binary"` to take binary `records` pushes. */
export const WS_BINARY_RECORDS = "records";

/** The bytes of a records frame before its first partition entry. */
export const RECORDS_HEAD_BYTES = 14;

/** The fixed bytes of a partition entry besides its topic name. */
const ENTRY_BYTES = 1 + 32;

/** One partition of a push: its batches and positions. */
export interface RecordsFramePartition {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the offset to fetch next */
  nextOffset: number;
  /** the high watermark (-1 with an error) */
  highWatermark: number;
  /** the log start offset (-1 with an error) */
  logStartOffset: number;
  /** whole RecordBatch v2, back to back */
  bytes: Uint8Array;
}

/** A decoded binary records push. */
export interface RecordsFrame {
  /** the subscription's id */
  id: number;
  /** the partitions in the order the frame names them; `bytes` are views into its payload */
  partitions: RecordsFramePartition[];
}

/** A binary records frame that cannot be read: why, and its id when that could be read. */
export class RecordsFrameError extends BinaryFrameError {}

const newBytes = (size: number) => new Uint8Array(size);

/**
 * Encodes a binary records push.
 *
 * @param id the subscription's id (a non-negative safe integer)
 * @param partitions the partitions it names, none with an error
 * @param alloc where the frame is written (a buffer of at least the size asked; its start is
 *   the frame), as for `encodeFrame` (ws_frames.ts)
 * @returns the message bytes, or null when the push cannot go as a binary frame (a partition
 *   has an error, a topic name is not 1 to 249 ASCII characters, no partition or more than
 *   65,535): send the JSON frame
 * @example
 * ```ts
 * const frame = encodeRecordsFrame(7, partitions);
 * socket.send(frame ?? encodeJsonFrame(json, payload));
 * ```
 */
export function encodeRecordsFrame(
  id: number,
  partitions: readonly (RecordsFramePartition & { error: unknown })[],
  alloc: (size: number) => Uint8Array<ArrayBuffer> = newBytes,
): Uint8Array<ArrayBuffer> | null {
  const count = partitions.length;
  if (count === 0 || count > 0xffff) return null;
  let head = RECORDS_HEAD_BYTES;
  let size = 0;
  for (let i = 0; i < count; i++) {
    const p = partitions[i];
    if (p.error !== null && p.error !== undefined) return null;
    const name = topicBytesOf(p.topic);
    if (name === null) return null;
    head += ENTRY_BYTES + name.byteLength;
    size += p.bytes.byteLength;
  }
  size += head;
  const out = alloc(size);
  writeU32(out, 0, WS_RECORDS);
  writeI64(out, 4, id);
  out[12] = count >>> 8;
  out[13] = count & 0xff;
  let at = RECORDS_HEAD_BYTES;
  let data = head;
  for (let i = 0; i < count; i++) {
    const p = partitions[i];
    const name = topicBytesOf(p.topic)!;
    const t = name.byteLength;
    out[at] = t;
    if (t <= 16) { for (let j = 0; j < t; j++) out[at + 1 + j] = name[j]; }
    else out.set(name, at + 1);
    at += 1 + t;
    writeU32(out, at, p.partition);
    writeI64(out, at + 4, p.nextOffset);
    writeI64(out, at + 12, p.highWatermark);
    writeI64(out, at + 20, p.logStartOffset);
    const b = p.bytes.byteLength;
    writeU32(out, at + 28, b);
    at += 32;
    out.set(p.bytes, data);
    data += b;
  }
  return out.byteLength === size ? out : out.subarray(0, size);
}

/**
 * The length of a binary records frame from its start, when that start holds its entries (the
 * first part of a push sent in parts: FrameParts in ws_frames.ts allocates the whole frame at
 * once from it).
 *
 * @param start the frame's first bytes
 * @returns the frame's length, or -1 when the start is not a records frame's or does not hold
 *   all its entries
 */
export function recordsFrameLength(start: Uint8Array): number {
  const n = start.byteLength;
  if (n < RECORDS_HEAD_BYTES || readU32(start, 0) !== WS_RECORDS) return -1;
  const count = start[12] << 8 | start[13];
  let at = RECORDS_HEAD_BYTES;
  let total = 0;
  for (let i = 0; i < count; i++) {
    if (at >= n) return -1;
    at += 1 + start[at];
    if (at + 32 > n) return -1;
    total += readU32(start, at + 28);
    at += 32;
  }
  return at + total;
}

/** The last topic name read, and its bytes: a consumer's pushes name the same few topics. */
let lastTopic = "";
let lastTopicBytes = new Uint8Array(0);

function topicAt(message: Uint8Array, at: number, t: number): string {
  let same = t === lastTopicBytes.byteLength;
  for (let i = 0; same && i < t; i++) same = message[at + i] === lastTopicBytes[i];
  if (same) return lastTopic;
  let topic = "";
  for (let i = at; i < at + t; i++) {
    const c = message[i];
    if (c >= 0x80) throw new TypeError("not ASCII");
    topic += String.fromCharCode(c);
  }
  lastTopic = topic;
  lastTopicBytes = message.slice(at, at + t);
  return topic;
}

/**
 * Decodes a binary records push (a message starting with {@linkcode WS_RECORDS}).
 *
 * @param message the message
 * @param copy whether the batches are copied out of the message (into one new buffer): for a
 *   message that is a view its caller may not keep; else they are views into the message
 * @returns the subscription's id and its partitions
 * @throws {RecordsFrameError} when it is too short, its id is not a safe integer, it names no
 *   partition, an entry runs past the message or its topic name is empty or not ASCII, or
 *   the batches' lengths do not add up to the rest of the message (with the id when it could
 *   be read)
 * @example
 * ```ts
 * const { id, partitions } = decodeRecordsFrame(bytes);
 * ```
 */
export function decodeRecordsFrame(
  message: Uint8Array,
  copy = false,
): RecordsFrame {
  const n = message.byteLength;
  if (n < 12) {
    throw new RecordsFrameError(`A binary records frame is at least 14 bytes, got ${n}`, null);
  }
  const hi = readU32(message, 4);
  if (hi > 0x1fffff) {
    throw new RecordsFrameError("A binary records frame's id must be below 2^53", null);
  }
  const id = hi * 0x100000000 + readU32(message, 8);
  if (n < RECORDS_HEAD_BYTES) {
    throw new RecordsFrameError(`A binary records frame is at least 14 bytes, got ${n}`, id);
  }
  const count = message[12] << 8 | message[13];
  if (count === 0) throw new RecordsFrameError("A binary records frame names no partition", id);
  const partitions: RecordsFramePartition[] = new Array(count);
  const lengths: number[] = new Array(count);
  let at = RECORDS_HEAD_BYTES;
  let total = 0;
  for (let i = 0; i < count; i++) {
    const t = at < n ? message[at] : 0;
    if (at >= n || t === 0 || at + 1 + t + 32 > n) {
      throw new RecordsFrameError(
        at < n && t === 0
          ? `Partition entry ${i} of a binary records frame has an empty topic name`
          : `Partition entry ${i} of a binary records frame runs past its end`,
        id,
      );
    }
    let topic: string;
    try {
      topic = topicAt(message, at + 1, t);
    } catch {
      throw new RecordsFrameError(
        `Partition entry ${i} of a binary records frame has a topic name that is not ASCII`,
        id,
      );
    }
    at += 1 + t;
    const b = readU32(message, at + 28);
    lengths[i] = b;
    total += b;
    partitions[i] = {
      topic,
      partition: readU32(message, at),
      nextOffset: readI64(message, at + 4),
      highWatermark: readI64(message, at + 12),
      logStartOffset: readI64(message, at + 20),
      bytes: message, // set below
    };
    at += 32;
  }
  if (at + total !== n) {
    throw new RecordsFrameError(
      `The batches of a binary records frame are ${n - at} bytes; its entries name ${total}`,
      id,
    );
  }
  const data = copy ? message.slice(at) : message;
  let pos = copy ? 0 : at;
  for (let i = 0; i < count; i++) {
    const b = lengths[i];
    partitions[i].bytes = data.subarray(pos, pos + b);
    pos += b;
  }
  return { id, partitions };
}
