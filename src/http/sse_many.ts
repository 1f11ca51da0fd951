/**
 * Server-sent events from many partitions of a topic on one stream, so a browser tails a
 * whole topic with one `EventSource` (one connection, instead of one per partition that
 * HTTP/1.1's six connections per host cannot hold):
 *
 * ```
 * GET /v1/topics/{topic}/records?partitions=0,1,2&offset=earliest|latest|N
 *     Accept: text/event-stream           (or ?offsets=0:5,1:7 — a position per partition)
 *
 * id: 0:43,1:7,2:0
 * data: {"partition":0,"offset":42,"timestamp":…,"key":…,"value":…,"headers":{…}}
 * ```
 *
 * `partitions` defaults to every partition of the topic, `offset` to `latest`. Each record
 * is an unnamed event with `partition` in its data; its id lists, for every partition of the
 * stream, the next offset to read, so a reconnecting `EventSource` resumes exactly after the
 * last record it got: `Last-Event-ID` wins over `offset`/`offsets` (the URL it reconnects to
 * is the first one). The stream reads through the broker's fetch-session core (one long poll
 * for all its partitions, fair across them); an idle stream sends `: keep-alive`. A partition
 * with an error (not led by this broker, out of range, …) gets one `event: error` whose data
 * is `{"partition",…error}` and leaves the stream; the stream ends when none is left, or on
 * broker shutdown.
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import type { FetchSessionRef } from "../broker/fetch_session.ts";
import { RillError } from "../protocol/errors.ts";
import { batchesToJson } from "./record_json.ts";

const encoder = new TextEncoder();

/** What {@linkcode manySseResponse} needs. */
export interface ManySseOptions {
  /** the topic */
  topic: string;
  /** the next offset of each partition of the stream, in stream order */
  positions: Map<number, number>;
  /** the most bytes read per partition at a time */
  maxBytes: number;
  /** base64 every key, value and header */
  forceBase64: boolean;
  /** the interval of keep-alive comments */
  keepAliveMs: number;
  /** ends the stream (broker shutdown) */
  signal: AbortSignal;
}

/**
 * The event id of a stream position: `partition:nextOffset` for each partition, joined by
 * commas.
 *
 * @param positions the next offset of each partition
 * @returns the id
 * @example
 * ```ts
 * positionId(new Map([[0, 43], [1, 7]])); // "0:43,1:7"
 * ```
 */
export function positionId(positions: Map<number, number>): string {
  let id = "";
  for (const [p, o] of positions) id += `${id === "" ? "" : ","}${p}:${o}`;
  return id;
}

/**
 * Parses an id of {@linkcode positionId} (a `Last-Event-ID`, or the `offsets` parameter).
 *
 * @param text the id
 * @param what the name used in an error message
 * @returns partition → next offset
 * @throws {RillError} INVALID_REQUEST when it is malformed
 */
export function parsePositions(text: string, what: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const part of text.split(",")) {
    const m = /^(\d{1,9}):(\d{1,16})$/.exec(part.trim());
    const offset = m ? Number(m[2]) : NaN;
    if (!m || !Number.isSafeInteger(offset) || out.has(Number(m[1]))) {
      throw new RillError(
        "INVALID_REQUEST",
        `${what} must be partition:offset pairs separated by commas, e.g. "0:42,1:7"`,
      );
    }
    out.set(Number(m[1]), offset);
  }
  return out;
}

/**
 * Builds the streaming response.
 *
 * @param broker the broker
 * @param opts topic, positions, sizes and the signal that ends the stream
 * @returns a `text/event-stream` response
 */
export function manySseResponse(broker: Broker, opts: ManySseOptions): Response {
  const positions = new Map(opts.positions);
  const cancelled = new AbortController();
  const signal = AbortSignal.any([opts.signal, cancelled.signal]);
  let session: FetchSessionRef = { id: 0, epoch: 0 };
  const sent = new Map<number, number>();
  const close = () => {
    if (session.id === 0) return;
    const s = session;
    session = { id: 0, epoch: 0 };
    broker.fetchMany({
      partitions: [],
      maxWaitMs: 0,
      minBytes: 1,
      session: { id: s.id, epoch: -1 },
    })
      .then((r) => r.release(), () => {});
  };
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      // A dropped stream is reopened by EventSource after 1 s (its default is up to 5 s).
      controller.enqueue(encoder.encode("retry: 1000\n\n"));
    },
    async pull(controller) {
      for (let turn = 0; turn < 1000; turn++) {
        if (signal.aborted || positions.size === 0) {
          close();
          controller.close();
          return;
        }
        // Only partitions whose position changed since the session last heard of them.
        const partitions = [];
        for (const [partition, offset] of positions) {
          if (session.id === 0 || sent.get(partition) !== offset) {
            partitions.push({ topic: opts.topic, partition, offset, maxBytes: opts.maxBytes });
            sent.set(partition, offset);
          }
        }
        let answer;
        try {
          answer = await broker.fetchMany({
            partitions,
            maxWaitMs: opts.keepAliveMs,
            minBytes: 1,
            signal,
            session,
          });
        } catch (e) {
          if (e instanceof RillError && e.code.includes("FETCH_SESSION")) {
            session = { id: 0, epoch: 0 };
            continue;
          }
          throw e;
        }
        let text = "";
        try {
          if (answer.session !== null) session = answer.session;
          for (const p of answer.partitions) {
            if (!positions.has(p.partition)) continue;
            if (p.error !== null) {
              const body = { partition: p.partition, ...p.error.toJSON().error };
              text += `event: error\ndata: ${JSON.stringify({ error: body })}\n\n`;
              positions.delete(p.partition);
              continue;
            }
            if (p.bytes.length === 0) continue;
            for (const r of batchesToJson(p.bytes, p.fetchOffset, opts.forceBase64)) {
              positions.set(p.partition, r.offset + 1);
              text += `id: ${positionId(positions)}\ndata: ${
                JSON.stringify({ partition: p.partition, ...r })
              }\n\n`;
            }
            positions.set(p.partition, Math.max(positions.get(p.partition)!, p.nextOffset));
          }
        } finally {
          answer.release();
        }
        if (text !== "") {
          controller.enqueue(encoder.encode(text));
          return;
        }
        if (signal.aborted) continue;
        if (answer.partitions.length === 0 || answer.totalBytes === 0) {
          controller.enqueue(encoder.encode(": keep-alive\n\n"));
          return;
        }
      }
    },
    cancel() {
      cancelled.abort();
      close();
    },
  }, { highWaterMark: 0 });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}
