/**
 * One Kafka connection: frames (int32 size + body) are cut from the byte stream, each
 * request is handed to the dispatcher as soon as it is complete (so pipelined requests run
 * concurrently), and answers leave strictly in request order.
 *
 * Limits, so that one slow or hostile peer costs only its own connection:
 * - a frame larger than `maxFrameBytes` (Kafka's `socket.request.max.bytes`, 100 MiB), or
 *   with a negative size, closes the connection at once; a frame's buffer grows with the
 *   bytes that actually arrived, not with the size it claims;
 * - a frame must arrive completely within `frameTimeoutMs` once it started;
 * - at most `maxInFlight` requests, and at most `maxInFlightBytes` of request frames, wait
 *   for their answer; beyond that the connection stops reading (TCP pushes back on the
 *   peer) until the oldest answer has been written;
 * - a request that does not decode (the dispatcher throws {@linkcode KafkaDecodeError})
 *   closes the connection after the answers before it were written.
 *
 * Produce frames are read into buffers lent by a {@linkcode FramePool} (when the options
 * give one), and the buffer goes back once the answer was written, if the dispatcher marked
 * the request {@linkcode RequestFrame.reusable}.
 *
 * @module
 */
import { KafkaDecodeError, Reader } from "./wire.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { classBytes, type FramePool, MAX_CLASS_BYTES } from "./frame_pool.ts";

/** A request header (v1/v2) and the reader positioned at its body. */
export interface RequestFrame {
  /** the API key */
  apiKey: number;
  /** the API version */
  apiVersion: number;
  /** echoed in the answer */
  correlationId: number;
  /** the client id (null when absent) */
  clientId: string | null;
  /** the whole frame, reader at the start of the header's tagged fields or the body */
  reader: Reader;
  /** the frame's size */
  size: number;
  /**
   * Set by the dispatcher when nothing refers to the frame's bytes once the answer is
   * written (a Produce with acks 1 or all), so that its buffer may be reused.
   */
  reusable?: boolean;
}

/**
 * An answer's chunks (size prefix included); `closeAfter` closes the connection after it;
 * `written` is called once it was written or dropped (lent buffers go back).
 */
export type Answer = Uint8Array[] & { closeAfter?: string; written?: () => void };

/**
 * What a connection asks of the protocol layer for each request: the answer, or null when
 * none is owed (a Produce with acks=0).
 */
export type Dispatch = (req: RequestFrame) => Promise<Answer | null>;

/** Settings of a connection. */
export interface ConnectionOptions {
  /** the largest request frame (default 100 MiB) */
  maxFrameBytes?: number;
  /** a started frame must be complete within this (default 30 s) */
  frameTimeoutMs?: number;
  /** pipelined requests waiting for answers at most (default 64) */
  maxInFlight?: number;
  /**
   * bytes of request frames waiting for answers at most (default 16 MiB; a larger request
   * is still taken when it is the only one waiting)
   */
  maxInFlightBytes?: number;
  /** where one-line reports go */
  log?: (line: string) => void;
  /** lends buffers for Produce frames (none: each frame gets a new buffer) */
  pool?: FramePool;
}

/** Kafka's socket.request.max.bytes default. */
export const MAX_FRAME_BYTES = 100 * 1024 * 1024;

/**
 * The default of {@linkcode ConnectionOptions.maxInFlightBytes}. librdkafka pipelines ~1 MB
 * Produce requests without limit; once the broker is the slower side, every request waiting
 * holds a frame buffer, and 64 of them were 64 MiB of buffers allocated, zeroed and faulted
 * in per connection (a tenth of the broker's busy time in a profile of a kcat produce) for
 * no more throughput: 16 requests queued keep the appends busy as well.
 */
const MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024;
const READ_CHUNK = 64 * 1024;
const COALESCE_BYTES = 64 * 1024;
const OWN_START = 1024 * 1024;
/** Produce frames at least this big use pooled buffers (when a pool is given). */
const POOL_FROM_BYTES = 8 * 1024;
const PRODUCE = 0;

/**
 * Serves one connection until the peer closes it, a frame is bad, or `signal` aborts.
 *
 * @param conn the connection
 * @param dispatch answers one request
 * @param opts limits and the log
 * @param signal aborts the connection (listener shutdown)
 */
export async function serveConnection(
  conn: Deno.Conn,
  dispatch: Dispatch,
  opts: ConnectionOptions,
  signal: AbortSignal,
): Promise<void> {
  const maxFrame = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
  const frameTimeoutMs = opts.frameTimeoutMs ?? 30_000;
  const maxInFlight = opts.maxInFlight ?? 64;
  const maxInFlightBytes = opts.maxInFlightBytes ?? MAX_IN_FLIGHT_BYTES;
  const log = opts.log ?? (() => {});
  const pool = opts.pool ?? null;
  const peer = describePeer(conn);
  // Answers are written whole: no Nagle delay behind the peer's delayed ACK.
  if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
  let closed = false;
  const close = (why?: string) => {
    if (closed) return;
    closed = true;
    if (why) log(`kafka: closing the connection from ${peer}: ${why}`);
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  // A bad frame stops reading; the answers owed before it are still written, then it closes.
  let stopping: string | null = null;
  const stop = (why: string) => {
    stopping ??= why;
  };
  const onAbort = () => close();
  signal.addEventListener("abort", onAbort, { once: true });

  // Answers in request order: a chain of writes, each waiting for its own answer.
  const pending: Promise<void>[] = [];
  // bytes of the frames in `pending`
  let pendingBytes = 0;
  let writeChain: Promise<void> = Promise.resolve();
  const enqueue = (
    answer: Promise<Answer | null>,
    req: RequestFrame,
    lent: Uint8Array | null,
  ) => {
    const done = writeChain = writeChain.then(async () => {
      let chunks: Answer | null;
      try {
        chunks = await answer;
      } catch (e) {
        close(e instanceof KafkaDecodeError ? e.message : `internal error: ${e}`);
        return;
      }
      // The request is done with its bytes (the dispatcher says so): its buffer goes back.
      if (lent !== null && req.reusable) pool!.give(lent);
      if (chunks === null) return;
      try {
        if (!closed) {
          // Small answers go out in one write (one segment); large ones chunk by chunk.
          const total = chunks.reduce((n, c) => n + c.length, 0);
          if (chunks.length > 1 && total <= COALESCE_BYTES) {
            await writeAll(conn, concatBytes(chunks, total));
          } else for (const c of chunks) await writeAll(conn, c);
        }
      } catch {
        close();
      } finally {
        chunks.written?.();
      }
      if (chunks.closeAfter) close(chunks.closeAfter);
    });
    pending.push(done);
    pendingBytes += req.size;
    done.finally(() => {
      pendingBytes -= req.size;
      const i = pending.indexOf(done);
      if (i >= 0) pending.splice(i, 1);
    });
  };

  let buf = new Uint8Array(READ_CHUNK);
  let start = 0; // first unconsumed byte
  let end = 0; // end of the bytes read
  // A frame larger than the read buffer is read straight into a buffer of its own, not
  // copied out of the read buffer: produce requests are that big, and the copy cost more
  // broker CPU than the CRC. It starts at 1 MiB (or twice what arrived) and grows with the
  // bytes that arrive, never past the frame's size.
  let own: Uint8Array | null = null;
  let ownFilled = 0;
  let ownSize = 0;
  // the most `own` grows to: the frame's size, or its pool class for a Produce frame
  let ownCap = 0;
  let ownPooled = false;
  let frameTimer: ReturnType<typeof setTimeout> | null = null;
  const clearFrameTimer = () => {
    if (frameTimer !== null) clearTimeout(frameTimer);
    frameTimer = null;
  };
  const startFrameTimer = () => {
    frameTimer ??= setTimeout(
      () => close(`a request did not arrive within ${frameTimeoutMs} ms`),
      frameTimeoutMs,
    );
  };
  /**
   * Hands one whole frame to the dispatcher; false when the connection must stop. `lent`
   * is the pool-class buffer the frame was read into, if any.
   */
  const take = async (frame: Uint8Array, lent: Uint8Array | null = null): Promise<boolean> => {
    clearFrameTimer();
    let req: RequestFrame;
    try {
      const r = new Reader(frame);
      const apiKey = r.int16();
      const apiVersion = r.int16();
      const correlationId = r.int32();
      const clientId = r.string(false);
      req = { apiKey, apiVersion, correlationId, clientId, reader: r, size: frame.length };
    } catch (e) {
      stop(e instanceof Error ? e.message : String(e));
      return false;
    }
    enqueue(dispatch(req), req, lent);
    while (
      (pending.length >= maxInFlight || pendingBytes >= maxInFlightBytes) &&
      pending.length > 0 && !closed
    ) await pending[0];
    return true;
  };
  try {
    while (!closed) {
      if (own !== null) {
        // The rest of a large frame, read into its own buffer.
        let into: Uint8Array = own;
        if (ownFilled === into.length) {
          const grown = new Uint8Array(Math.min(ownCap, into.length * 2));
          grown.set(into);
          own = into = grown;
        }
        let n: number | null;
        try {
          // never past the frame: the next one starts in the read buffer
          n = await conn.read(into.subarray(ownFilled, Math.min(into.length, ownSize)));
        } catch {
          n = null;
        }
        if (n === null) break;
        ownFilled += n;
        if (ownFilled === ownSize) {
          own = null;
          const lent = ownPooled && into.length === ownCap ? into : null;
          if (!(await take(into.subarray(0, ownSize), lent))) break;
        }
        continue;
      }
      // Cut every complete frame out of the buffer.
      for (;;) {
        if (end - start < 4) break;
        const size = (buf[start] << 24) | (buf[start + 1] << 16) | (buf[start + 2] << 8) |
          buf[start + 3];
        if (size < 8 || size > maxFrame) {
          stop(
            size > maxFrame
              ? `a request of ${size} bytes exceeds the ${maxFrame}-byte limit`
              : `a request size of ${size} bytes is not a Kafka request`,
          );
          break;
        }
        const have = end - start - 4;
        // A Produce frame (api key known once 2 bytes arrived) goes into a pooled buffer.
        const pooled = pool !== null && size >= POOL_FROM_BYTES && size <= MAX_CLASS_BYTES &&
          have >= 2 && ((buf[start + 4] << 8) | buf[start + 5]) === PRODUCE;
        if (have < size) {
          startFrameTimer();
          if (size > READ_CHUNK) {
            // Large: the rest goes straight into the frame's own buffer (above), a free
            // pooled one if there is one, else one that grows with the bytes that arrive.
            ownPooled = pooled;
            ownCap = pooled ? classBytes(size) : size;
            own = (pooled ? pool.take(size) : null) ??
              new Uint8Array(Math.min(ownCap, Math.max(OWN_START, 2 * have)));
            own.set(buf.subarray(start + 4, end));
            ownFilled = have;
            ownSize = size;
            start = end = 0;
          }
          // Else the read buffer grows (below) as the rest arrives.
          break;
        }
        // One frame: copied out so the read buffer can be reused (`new` + `set`: V8's
        // TypedArray `slice` copied ~6x slower here).
        const lent = pooled ? pool.take(size) ?? new Uint8Array(classBytes(size)) : null;
        const frame = lent !== null ? lent.subarray(0, size) : new Uint8Array(size);
        frame.set(buf.subarray(start + 4, start + 4 + size));
        start += 4 + size;
        if (!(await take(frame, lent))) break;
      }
      if (closed || stopping !== null) break;
      if (own !== null) continue;
      if (start === end) start = end = 0;
      else if (end === buf.length) {
        // Keep the partial frame, drop what was consumed.
        if (start > 0) {
          buf.copyWithin(0, start, end);
          end -= start;
          start = 0;
        } else {
          const next = new Uint8Array(buf.length * 2);
          next.set(buf.subarray(0, end));
          buf = next;
        }
      }
      let n: number | null;
      try {
        n = await conn.read(buf.subarray(end));
      } catch {
        n = null;
      }
      if (n === null) break;
      end += n;
    }
  } finally {
    clearFrameTimer();
    signal.removeEventListener("abort", onAbort);
    await writeChain.catch(() => {});
    close(stopping ?? undefined);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

function describePeer(conn: Deno.Conn): string {
  const a = conn.remoteAddr as Deno.NetAddr;
  return a && "hostname" in a ? `${a.hostname}:${a.port}` : "a peer";
}
