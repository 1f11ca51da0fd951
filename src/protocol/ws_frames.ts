/**
 * The frames of Rill's WebSocket protocol (`GET /v1/ws`, subprotocol `rill.v1`), shared by
 * the broker (src/ws) and the client (src/client/ws_connection.ts). README.md describes the
 * protocol; this is its codec.
 *
 * Every frame is one binary WebSocket message:
 *
 * ```
 * u32 big-endian   H, the length of the header
 * H bytes          the header: a UTF-8 JSON object with an "op" field (and "id" for requests)
 * the rest         the payload: RecordBatch v2 bytes (produce, records), or nothing
 * ```
 *
 * No header length starts with the byte 0xFF: messages that do are the parts below, the
 * binary produce frames of ws_produce_frames.ts, or the binary records pushes of
 * ws_records_frames.ts.
 *
 * A client may send a frame as several messages ("parts"), each at most
 * {@linkcode WS_PART_BYTES} long: every part but the last starts with the u32
 * {@linkcode WS_PART_MORE}, the last with {@linkcode WS_PART_LAST}; the frame is the
 * concatenation of what follows those markers. The broker answers each part but the last
 * with an empty message. This is for Deno's WebSocket client, which writes a message longer
 * than 1 KiB in two writes (its header, then its payload) without TCP_NODELAY: the payload
 * then waits for the broker's delayed ACK, ~40 ms. Parts of at most 1 KiB go out in one
 * write each, and the empty answer to each carries the ACK that lets the next one go.
 * Browsers and Node set TCP_NODELAY on WebSockets and send frames whole; so does the client in
 * Deno, over a TCP connection of its own (src/client/tcp_websocket.ts): it never sends parts.
 * The other way, the broker sends an answer longer than {@linkcode WS_ANSWER_PART_BYTES} in
 * parts (with the same markers, no empty answers) to a client whose `hello` said
 * `"parts": true`; {@linkcode FrameParts} joins them.
 *
 * @module
 */
import { recordsFrameLength } from "./ws_records_frames.ts";

/** The largest message Deno's WebSocket client writes in one write. */
export const WS_PART_BYTES = 1024;

/** The marker of a part that more parts follow (a header length no frame can have). */
export const WS_PART_MORE = 0xffffffff;

/** The marker of the last part of a frame sent in parts. */
export const WS_PART_LAST = 0xfffffffe;

/**
 * Splits a frame into parts of at most {@linkcode WS_PART_BYTES} (see the module comment).
 *
 * @param frame the frame bytes (longer than WS_PART_BYTES)
 * @returns the part messages
 * @example
 * ```ts
 * for (const part of frameParts(encodeFrame(header, [batch]))) socket.send(part);
 * ```
 */
export function frameParts(frame: Uint8Array): Uint8Array<ArrayBuffer>[] {
  const room = WS_PART_BYTES - 4;
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for (let pos = 0; pos < frame.byteLength; pos += room) {
    const chunk = frame.subarray(pos, Math.min(frame.byteLength, pos + room));
    const part = new Uint8Array(4 + chunk.byteLength);
    const last = pos + room >= frame.byteLength;
    new DataView(part.buffer).setUint32(0, last ? WS_PART_LAST : WS_PART_MORE);
    part.set(chunk, 4);
    parts.push(part);
  }
  return parts;
}

/**
 * The largest message a broker sends to a client that takes answers in parts (its `hello`
 * said `"parts": true`): a longer answer goes as parts of at most this many bytes, with the
 * markers above. A server WebSocket in Deno keeps a write buffer as large as the largest
 * message it sent, for as long as the connection is open: 900 consumers behind the log end
 * each sent answers of up to 1 MiB held ~1 MiB each (measured: 200 connections that each sent
 * one 1 MiB message, +243 MiB of broker RSS; +15 MiB with 1,000 B messages).
 */
export const WS_ANSWER_PART_BYTES = 64 * 1024;

/**
 * Joins the parts of a frame sent in parts as they arrive (the client's side of
 * {@linkcode WS_ANSWER_PART_BYTES}).
 *
 * Each byte of a part is copied once, into the frame it joins: the first part's bytes go into
 * a buffer with room for a short last part after them (a push of 64 KiB of records is a
 * 64 KiB part and a few hundred bytes more, its header), grown only when more parts come. A
 * binary records push (ws_records_frames.ts) names its length in its first part: its buffer
 * is allocated whole from it, never grown.
 */
export class FrameParts {
  #frame: Uint8Array | null = null;
  #bytes = 0;

  /**
   * Takes a message: a part (copied) or a whole frame.
   *
   * @param message the message (not kept: a part is copied)
   * @returns the whole frame once its last part came (a new buffer; or the message itself,
   *   not a part), else null
   */
  take(message: Uint8Array): Uint8Array | null {
    if (message.byteLength < 4 || message[0] !== 0xff) return message;
    const marker = (message[0] << 24 | message[1] << 16 | message[2] << 8 | message[3]) >>> 0;
    if (marker !== WS_PART_MORE && marker !== WS_PART_LAST) return message;
    const n = message.byteLength - 4;
    const need = this.#bytes + n;
    let frame = this.#frame;
    if (frame === null || frame.byteLength < need) {
      // The first part: the length a records push names, else room for a last part of up to
      // 4 KiB; later: double.
      let size = need;
      if (frame !== null) size = Math.max(need, frame.byteLength * 2);
      else if (marker === WS_PART_MORE) {
        const named = recordsFrameLength(message.subarray(4));
        size = named >= need ? named : need + 4096;
      }
      const grown = new Uint8Array(size);
      if (frame !== null) grown.set(frame.subarray(0, this.#bytes));
      this.#frame = frame = grown;
    }
    frame.set(message.subarray(4), this.#bytes);
    this.#bytes = need;
    if (marker === WS_PART_MORE) return null;
    this.#frame = null;
    this.#bytes = 0;
    return need === frame.byteLength ? frame : frame.subarray(0, need);
  }
}

/** The WebSocket subprotocol of this frame format. */
export const WS_SUBPROTOCOL = "rill.v1";

/**
 * The prefix of a second subprotocol that carries an API key where a client cannot set
 * headers (browsers): `rill.auth.<base64url of "<keyId>.<secret>">`.
 */
export const WS_AUTH_SUBPROTOCOL_PREFIX = "rill.auth.";

/** The path of the WebSocket endpoint. */
export const WS_PATH = "/v1/ws";

/** A decoded frame: its JSON header and its payload (a view into the message). */
export interface Frame {
  /** the header object */
  header: Record<string, unknown>;
  /** the payload bytes (empty when there are none) */
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

const newBytes = (size: number) => new Uint8Array(size);

/**
 * Encodes a frame.
 *
 * @param header the header object (JSON-serializable)
 * @param payload payload bytes (one or more, written one after the other), if any
 * @param alloc where the frame is written: a buffer of at least the size asked (default a
 *   new one); a sender that copies the message at once may lend a reused one
 * @returns the message bytes
 * @example
 * ```ts
 * socket.send(encodeFrame({ op: "produce", id: 1, topic: "t", partition: 0, acks: 1 }, [batch]));
 * ```
 */
export function encodeFrame(
  header: Record<string, unknown>,
  payload: readonly Uint8Array[] = [],
  alloc: (size: number) => Uint8Array<ArrayBuffer> = newBytes,
): Uint8Array<ArrayBuffer> {
  return encodeJsonFrame(JSON.stringify(header), payload, alloc);
}

/**
 * Encodes a frame whose header is already JSON text (what {@linkcode encodeFrame} does after
 * `JSON.stringify`): for headers the broker writes out itself.
 *
 * @param json the header, JSON of an object
 * @param payload the bytes after the header
 * @param alloc where the bytes are written, as for {@linkcode encodeFrame}
 * @returns the message bytes
 * @example
 * ```ts
 * socket.send(encodeJsonFrame(`{"op":"records","id":${id}}`, [bytes]));
 * ```
 */
export function encodeJsonFrame(
  json: string,
  payload: readonly Uint8Array[] = [],
  alloc: (size: number) => Uint8Array<ArrayBuffer> = newBytes,
): Uint8Array<ArrayBuffer> {
  const n = json.length;
  let size = 4 + n;
  for (const p of payload) size += p.byteLength;
  // Headers are short and mostly ASCII: written here without a call into the runtime
  // (TextEncoder.encodeInto is one); anything else goes through TextEncoder.
  let out = alloc(size);
  let written = n;
  for (let i = 0; i < n; i++) {
    const c = json.charCodeAt(i);
    if (c >= 0x80) {
      // UTF-8 takes at most 3 bytes per UTF-16 unit.
      size += n * 2;
      out = alloc(size);
      written = encoder.encodeInto(json, out.subarray(4)).written;
      break;
    }
    out[4 + i] = c;
  }
  out[0] = written >>> 24;
  out[1] = (written >> 16) & 0xff;
  out[2] = (written >> 8) & 0xff;
  out[3] = written & 0xff;
  let pos = 4 + written;
  for (const p of payload) {
    out.set(p, pos);
    pos += p.byteLength;
  }
  return pos === out.byteLength ? out : out.subarray(0, pos);
}

/**
 * Encodes a frame with no payload whose header is already JSON text, all ASCII (numbers and
 * fixed names: what the broker writes out for its most frequent answers).
 *
 * @param json the header, JSON of an object, ASCII only
 * @param alloc where the bytes are written (at least the size asked for; the message is its
 *   start), as for {@linkcode encodeFrame}
 * @returns the message bytes
 * @example
 * ```ts
 * socket.send(encodeAsciiFrame(`{"op":"produced","id":${id}}`));
 * ```
 */
export function encodeAsciiFrame(
  json: string,
  alloc: (size: number) => Uint8Array<ArrayBuffer> = newBytes,
): Uint8Array<ArrayBuffer> {
  const n = json.length;
  const out = alloc(4 + n);
  out[0] = n >>> 24;
  out[1] = (n >> 16) & 0xff;
  out[2] = (n >> 8) & 0xff;
  out[3] = n & 0xff;
  for (let i = 0; i < n; i++) out[4 + i] = json.charCodeAt(i);
  return out.byteLength === 4 + n ? out : out.subarray(0, 4 + n);
}

/**
 * Decodes a frame.
 *
 * @param message the message bytes
 * @returns the header and payload
 * @throws {TypeError} when the message is not a frame: too short, a header length past its
 *   end, a header that is not UTF-8 JSON of an object with a string "op"
 * @example
 * ```ts
 * const { header, payload } = decodeFrame(new Uint8Array(event.data));
 * ```
 */
export function decodeFrame(message: Uint8Array): Frame {
  if (message.byteLength < 4) throw new TypeError("A frame is at least 4 bytes long");
  const length = (message[0] << 24 | message[1] << 16 | message[2] << 8 | message[3]) >>> 0;
  if (length > message.byteLength - 4) {
    throw new TypeError(`The frame's header length ${length} is past its end`);
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText(message, length));
  } catch {
    throw new TypeError("The frame's header is not UTF-8 JSON");
  }
  if (
    header === null || typeof header !== "object" || Array.isArray(header) ||
    typeof (header as { op?: unknown }).op !== "string"
  ) {
    throw new TypeError('The frame\'s header must be a JSON object with a string "op"');
  }
  return { header: header as Record<string, unknown>, payload: message.subarray(4 + length) };
}

/** Short headers up to this length are read as ASCII without a call into the runtime. */
const SHORT_HEADER = 512;

/** The header's text: ASCII read here when short, else (or if not ASCII) TextDecoder's. */
function headerText(message: Uint8Array, length: number): string {
  if (length <= SHORT_HEADER) {
    const end = 4 + length;
    let ascii = true;
    for (let i = 4; i < end; i++) {
      if (message[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      // Eight characters a call (faster here than one call over a subarray, and no array).
      let text = "";
      let i = 4;
      for (; i + 8 <= end; i += 8) {
        text += String.fromCharCode(
          message[i],
          message[i + 1],
          message[i + 2],
          message[i + 3],
          message[i + 4],
          message[i + 5],
          message[i + 6],
          message[i + 7],
        );
      }
      for (; i < end; i++) text += String.fromCharCode(message[i]);
      return text;
    }
  }
  return decoder.decode(message.subarray(4, 4 + length));
}
