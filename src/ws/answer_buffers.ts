/**
 * What the WebSocket sessions (session.ts) encode their answers into, shared by every
 * connection, and the text of a JSON `produced` answer.
 *
 * @module
 */
import type { BatchAppendResult } from "../broker/produce.ts";
import { WS_ANSWER_PART_BYTES } from "../protocol/ws_frames.ts";

/**
 * Frames up to this size are encoded into one buffer shared by every connection (below);
 * larger ones get a buffer of their own.
 */
const SCRATCH_MAX_BYTES = 8 * 1024 * 1024;
let scratch = new Uint8Array(64 * 1024);
let part: Uint8Array<ArrayBuffer> | undefined;

/**
 * The buffer an answer is encoded into before it is sent: Deno's WebSocket copies a message
 * at `send()`, so the same buffer serves every answer. A new buffer per answer was garbage
 * the size of everything sent, freed only at the next collection: with 900 long polls
 * answered, the broker's external memory reached ~200 MiB between collections.
 *
 * @param size the bytes needed
 * @returns at least `size` bytes: the shared buffer, or a buffer of their own past 8 MiB
 * @example
 * ```ts
 * socket.send(encodeFrame({ op: "hello", id: 1 }, [], lendScratch));
 * ```
 */
export function lendScratch(size: number): Uint8Array<ArrayBuffer> {
  if (size > SCRATCH_MAX_BYTES) return new Uint8Array(size);
  if (scratch.byteLength < size) {
    let n = scratch.byteLength;
    while (n < size) n *= 2;
    scratch = new Uint8Array(n);
  }
  return scratch;
}

/**
 * The buffer each part of an answer sent in parts goes through (session.ts `#sendFrame`).
 *
 * @returns {@linkcode WS_ANSWER_PART_BYTES} bytes, the same each time
 */
export function partBuffer(): Uint8Array<ArrayBuffer> {
  return part ??= new Uint8Array(WS_ANSWER_PART_BYTES);
}

/**
 * The header of a `produced` answer, written out: a JSON.stringify of the same object cost
 * ~1 µs of the ~70 µs a one-record produce frame took (profiled).
 *
 * @param id the produce frame's id
 * @param r what the broker answered (null: acks=0)
 * @returns the JSON text
 */
export function producedAnswer(id: number, r: BatchAppendResult | null): string {
  return r === null
    ? `{"op":"produced","id":${id}}`
    : `{"op":"produced","id":${id},"partition":${r.partition},"baseOffset":${r.baseOffset},"lastOffset":${r.lastOffset},"recordCount":${r.recordCount},"logAppendTime":${r.logAppendTime}}`;
}
