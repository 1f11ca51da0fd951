/**
 * The binary produce frames of Rill's WebSocket protocol (docs/http-api.md, "Binary produce
 * frames"), shared by the broker (src/ws/session.ts) and the client
 * (src/client/ws_connection.ts): a produce request and its `produced` answer laid out as
 * fixed fields instead of a JSON header, so that a round trip costs neither side a
 * `JSON.parse` or a `JSON.stringify`. A broker that speaks them says so in its `hello`
 * answer (`"binary": ["produce"]`); a client sends them only then, so a new client talks to
 * an older broker in JSON frames.
 *
 * A JSON frame starts with its header's length; these start with a u32 marker no header
 * length can be (as the markers of frames sent in parts, ws_frames.ts). All integers are
 * big-endian.
 *
 * ```
 * produce (client → broker), 18 + T bytes, then the batches:
 *   0   u32  0xFFFFFFFD
 *   4   u64  id (below 2^53)
 *   12  u32  partition (below 2^31)
 *   16  i8   acks: -1 (all), 1 or 0
 *   17  u8   T, the topic name's length (1 to 249)
 *   18  T    the topic name (ASCII)
 *   18+T     one or more RecordBatch v2, back to back
 *
 * produced (broker → client), 44 bytes (12 with acks=0: marker and id only):
 *   0   u32  0xFFFFFFFC
 *   4   u64  id
 *   12  u32  partition
 *   16  i64  baseOffset
 *   24  i64  lastOffset
 *   32  u32  recordCount
 *   36  i64  logAppendTime (-1 unless the topic uses LogAppendTime)
 * ```
 *
 * An error is answered with the JSON `error` frame, carrying the request's id.
 *
 * @module
 */
import { BinaryFrameError, readI64, readU32, writeI64, writeU32 } from "./binary_fields.ts";

export { topicBytesOf } from "./binary_fields.ts";

/** The marker of a binary produce request. */
export const WS_PRODUCE = 0xfffffffd;

/** The marker of a binary `produced` answer. */
export const WS_PRODUCED = 0xfffffffc;

/** What a broker's `hello` answer lists in `"binary"` when it takes binary produce frames. */
export const WS_BINARY_PRODUCE = "produce";

/** The bytes of a produce frame before its topic name. */
export const PRODUCE_HEAD_BYTES = 18;

/** The length of a `produced` answer with offsets, and of one for acks=0. */
export const PRODUCED_BYTES = 44;
export const PRODUCED_ACKS0_BYTES = 12;

/** A decoded binary produce request. */
export interface ProduceFrame {
  id: number;
  topic: string;
  partition: number;
  acks: -1 | 0 | 1;
  /** the batches: a view into the message */
  payload: Uint8Array;
}

/** The offsets of a produce, as the JSON `produced` answer carries them. */
export interface ProducedOffsets {
  partition: number;
  baseOffset: number;
  lastOffset: number;
  recordCount: number;
  logAppendTime: number;
}

/** A binary produce frame that cannot be read: why, and its id when that could be read. */
export class ProduceFrameError extends BinaryFrameError {}

/**
 * Whether a message starts with `marker` (a u32; false if shorter than 4 bytes).
 *
 * @param message the message
 * @param marker the u32 marker
 * @returns whether it is a frame of that kind
 * @example
 * ```ts
 * if (startsWith(bytes, WS_PRODUCED)) decodeProducedFrame(bytes);
 * ```
 */
export function startsWith(message: Uint8Array, marker: number): boolean {
  return message.byteLength >= 4 && message[0] === 0xff &&
    ((message[0] << 24 | message[1] << 16 | message[2] << 8 | message[3]) >>> 0) === marker;
}

const newBytes = (size: number) => new Uint8Array(size);

/**
 * Encodes a binary produce request.
 *
 * @param id the request id (a non-negative safe integer)
 * @param name the topic name's bytes ({@linkcode topicBytesOf}: 1 to 249 bytes)
 * @param partition the partition
 * @param acks -1 (all), 1 or 0
 * @param batch the RecordBatch v2 bytes (one or more)
 * @param alloc where the frame is written (a buffer of at least the size asked; its start is
 *   the frame), as for `encodeFrame` (ws_frames.ts)
 * @returns the message bytes
 * @example
 * ```ts
 * socket.send(encodeProduceFrame(1, topicBytesOf("orders")!, 0, -1, batch));
 * ```
 */
export function encodeProduceFrame(
  id: number,
  name: Uint8Array,
  partition: number,
  acks: -1 | 0 | 1,
  batch: Uint8Array,
  alloc: (size: number) => Uint8Array<ArrayBuffer> = newBytes,
): Uint8Array<ArrayBuffer> {
  const head = PRODUCE_HEAD_BYTES + name.byteLength;
  const size = head + batch.byteLength;
  const out = alloc(size);
  writeU32(out, 0, WS_PRODUCE);
  writeI64(out, 4, id);
  writeU32(out, 12, partition);
  out[16] = acks & 0xff;
  out[17] = name.byteLength;
  out.set(name, PRODUCE_HEAD_BYTES);
  out.set(batch, head);
  return out.byteLength === size ? out : out.subarray(0, size);
}

/** The last topic name read, and its bytes: a producer names the same one frame after frame. */
let lastTopic = "";
let lastTopicBytes = new Uint8Array(0);

/**
 * Decodes a binary produce request (a message starting with {@linkcode WS_PRODUCE}).
 *
 * @param message the message
 * @returns the request; its payload is a view into the message
 * @throws {ProduceFrameError} when it is too short, its id is not a safe integer, its
 *   partition is past 2^31 - 1, its acks is not -1, 0 or 1, or its topic name's length is 0
 *   or runs past the message (with the id when it could be read)
 * @example
 * ```ts
 * const { id, topic, partition, acks, payload } = decodeProduceFrame(bytes);
 * ```
 */
export function decodeProduceFrame(message: Uint8Array): ProduceFrame {
  const n = message.byteLength;
  if (n < 12) {
    throw new ProduceFrameError(`A binary produce frame is at least 12 bytes, got ${n}`, null);
  }
  const hi = readU32(message, 4);
  if (hi > 0x1fffff) {
    throw new ProduceFrameError("A binary produce frame's id must be below 2^53", null);
  }
  const id = hi * 0x100000000 + readU32(message, 8);
  if (n < PRODUCE_HEAD_BYTES) {
    throw new ProduceFrameError(
      `A binary produce frame has a ${PRODUCE_HEAD_BYTES}-byte head, got ${n} bytes`,
      id,
    );
  }
  const partition = readU32(message, 12);
  if (partition > 0x7fffffff) {
    throw new ProduceFrameError(
      `"partition" must be an integer from 0 to 2147483647, got ${partition}`,
      id,
    );
  }
  const a = message[16];
  const acks = a === 0xff ? -1 : a;
  if (acks !== -1 && acks !== 0 && acks !== 1) {
    throw new ProduceFrameError(`"acks" must be -1, 1 or 0, got ${a << 24 >> 24}`, id);
  }
  const t = message[17];
  const end = PRODUCE_HEAD_BYTES + t;
  if (t === 0 || end > n) {
    throw new ProduceFrameError(
      t === 0
        ? "A binary produce frame's topic name is empty"
        : `A binary produce frame's topic name of ${t} bytes runs past its end`,
      id,
    );
  }
  let topic = lastTopic;
  let same = t === lastTopicBytes.byteLength;
  for (let i = 0; same && i < t; i++) same = message[PRODUCE_HEAD_BYTES + i] === lastTopicBytes[i];
  if (!same) {
    topic = "";
    for (let i = PRODUCE_HEAD_BYTES; i < end; i++) topic += String.fromCharCode(message[i]);
    lastTopic = topic;
    lastTopicBytes = message.slice(PRODUCE_HEAD_BYTES, end);
  }
  return { id, topic, partition, acks, payload: message.subarray(end) };
}

/**
 * Encodes a binary `produced` answer.
 *
 * @param id the request id
 * @param r the offsets, or null for acks=0
 * @param alloc where it is written (at least the size asked; its start is the answer)
 * @returns the message bytes
 * @example
 * ```ts
 * socket.send(encodeProducedFrame(7, { partition: 0, baseOffset: 5, lastOffset: 5, recordCount: 1, logAppendTime: -1 }));
 * ```
 */
export function encodeProducedFrame(
  id: number,
  r: ProducedOffsets | null,
  alloc: (size: number) => Uint8Array<ArrayBuffer> = newBytes,
): Uint8Array<ArrayBuffer> {
  const size = r === null ? PRODUCED_ACKS0_BYTES : PRODUCED_BYTES;
  const out = alloc(size);
  writeU32(out, 0, WS_PRODUCED);
  writeI64(out, 4, id);
  if (r !== null) {
    writeU32(out, 12, r.partition);
    writeI64(out, 16, r.baseOffset);
    writeI64(out, 24, r.lastOffset);
    writeU32(out, 32, r.recordCount);
    writeI64(out, 36, r.logAppendTime);
  }
  return out.byteLength === size ? out : out.subarray(0, size);
}

/**
 * Decodes a binary `produced` answer (a message starting with {@linkcode WS_PRODUCED}).
 *
 * @param message the message
 * @returns its id, and its offsets (null for an acks=0 answer)
 * @throws {TypeError} when its length is neither of the two
 * @example
 * ```ts
 * const { id, offsets } = decodeProducedFrame(bytes);
 * ```
 */
export function decodeProducedFrame(
  message: Uint8Array,
): { id: number; offsets: ProducedOffsets | null } {
  const n = message.byteLength;
  if (n !== PRODUCED_BYTES && n !== PRODUCED_ACKS0_BYTES) {
    throw new TypeError(`A binary produced answer is 44 or 12 bytes, got ${n}`);
  }
  const id = readI64(message, 4);
  if (n === PRODUCED_ACKS0_BYTES) return { id, offsets: null };
  return {
    id,
    offsets: {
      partition: readU32(message, 12),
      baseOffset: readI64(message, 16),
      lastOffset: readI64(message, 24),
      recordCount: readU32(message, 32),
      logAppendTime: readI64(message, 36),
    },
  };
}
