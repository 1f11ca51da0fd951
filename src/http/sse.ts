/**
 * Server-sent events from a partition: `Accept: text/event-stream` on the fetch URL pushes
 * each committed record from `offset` on as it arrives.
 *
 * Wire format (the WHATWG EventSource format):
 *
 * ```
 * id: 42
 * data: {"offset":42,"timestamp":…,"key":…,"value":…,"headers":{…}}
 *
 * : keep-alive
 *
 * event: error
 * data: {"error":{"code":"OFFSET_OUT_OF_RANGE",…}}
 * ```
 *
 * Records are unnamed events (an `EventSource`'s `onmessage` gets them) whose id is the
 * offset, so a reconnecting `EventSource` resumes after the last one it saw (the route reads
 * `Last-Event-ID`). An idle stream sends a keep-alive comment every `sseKeepAliveMs`. A
 * failure mid-stream (e.g. retention deleted the records ahead of the reader) sends one
 * `error` event and ends the stream; so does a broker shutdown (without the event). The
 * stream stops reading the log as soon as the client disconnects.
 *
 * @module
 */
import type { Replica } from "../broker/replica.ts";
import { RillError } from "../protocol/errors.ts";
import { batchesToJson } from "./record_json.ts";

const encoder = new TextEncoder();

/** What {@linkcode sseResponse} needs. */
export interface SseOptions {
  /** the first offset to push */
  offset: number;
  /** the most bytes read from the log at a time */
  maxBytes: number;
  /** base64 every key, value and header */
  forceBase64: boolean;
  /** the interval of keep-alive comments */
  keepAliveMs: number;
  /** ends the stream: the client disconnected or the broker is shutting down */
  signal: AbortSignal;
  /** told of each read's batch bytes and record count (the broker's metrics) */
  onRead?: (bytes: number, records: number) => void;
}

/**
 * Builds the streaming response.
 *
 * @param replica the partition to read
 * @param opts offset, sizes and the signal that ends the stream
 * @returns a `text/event-stream` response
 * @example
 * ```ts
 * return sseResponse(replica, { offset: 0, maxBytes: 1 << 20, forceBase64: false, keepAliveMs: 15_000, signal });
 * ```
 */
export function sseResponse(replica: Replica, opts: SseOptions): Response {
  let offset = opts.offset;
  const cancelled = new AbortController();
  const signal = AbortSignal.any([opts.signal, cancelled.signal]);
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Bounded: each turn either enqueues (records, keep-alive, error) or ends the stream.
      for (let turn = 0; turn < 1000; turn++) {
        if (signal.aborted || replica.closing) {
          controller.close();
          return;
        }
        let text = "";
        try {
          const result = await replica.read(offset, opts.maxBytes);
          if (result.bytes.length > 0) {
            const records = batchesToJson(result.bytes, offset, opts.forceBase64);
            opts.onRead?.(result.bytes.length, records.length);
            for (const r of records) {
              text += `id: ${r.offset}\ndata: ${JSON.stringify(r)}\n\n`;
            }
            offset = Math.max(offset, result.nextOffset);
          }
        } catch (e) {
          if (signal.aborted || replica.closing) {
            controller.close();
            return;
          }
          const err = e instanceof RillError
            ? e
            : new RillError("UNKNOWN_SERVER_ERROR", "The broker failed to read the partition");
          controller.enqueue(
            encoder.encode(`event: error\ndata: ${JSON.stringify(err.toJSON())}\n\n`),
          );
          controller.close();
          return;
        }
        if (text !== "") {
          controller.enqueue(encoder.encode(text));
          return;
        }
        const outcome = await replica.waiters.wait(1, opts.keepAliveMs, signal);
        if (outcome === "timeout") {
          controller.enqueue(encoder.encode(": keep-alive\n\n"));
          return;
        }
        // "data": read again; "aborted"/"closed": the checks at the top end the stream.
      }
    },
    cancel() {
      cancelled.abort();
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
