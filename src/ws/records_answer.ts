/**
 * The header of a fetch's `records` answer, written out as JSON text: the most frequent frame
 * the broker sends to long-polling consumers (5,000 connected clients: each append wakes ~112
 * of them, each answered one). The text is the same as `JSON.stringify` of the answer object
 * (same keys in the same order), without walking a new object per answer.
 *
 * @module
 */
import type { FetchManyResult, PartitionFetchResult } from "../broker/fetch_session.ts";
import { encodeJsonFrame } from "../protocol/ws_frames.ts";
import { encodeRecordsFrame } from "../protocol/ws_records_frames.ts";

/** Topic names as JSON strings (validated names need no escaping, but stay exact). */
const topicJson = new Map<string, string>();

function quoted(topic: string): string {
  let json = topicJson.get(topic);
  if (json === undefined) {
    if (topicJson.size >= 4096) topicJson.clear();
    json = JSON.stringify(topic);
    topicJson.set(topic, json);
  }
  return json;
}

/**
 * The JSON header of a `records` answer to fetch `id`, and the payload it names (each
 * partition's bytes without an error, in order).
 *
 * @param id the fetch's id
 * @param result what the broker's fetch returned
 * @param payload receives the bytes of the partitions answered without an error
 * @returns the header's JSON text, equal to `JSON.stringify({ op: "records", id, session,
 *   partitions })` with each partition `{ topic, partition, nextOffset, highWatermark,
 *   logStartOffset, bytes }` (`bytes` its length), or `{ topic, partition, error }`
 */
export function recordsAnswerJson(
  id: number,
  result: Pick<FetchManyResult, "session" | "partitions">,
  payload: Uint8Array[],
): string {
  const s = result.session;
  let json = `{"op":"records","id":${id},"session":${
    s === null ? "null" : `{"id":${s.id},"epoch":${s.epoch}}`
  },"partitions":[`;
  const parts = result.partitions;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (i > 0) json += ",";
    if (p.error !== null) {
      json += JSON.stringify({
        topic: p.topic,
        partition: p.partition,
        error: p.error.toJSON().error,
      });
      continue;
    }
    payload.push(p.bytes);
    json += `{"topic":${
      quoted(p.topic)
    },"partition":${p.partition},"nextOffset":${p.nextOffset},"highWatermark":${p.highWatermark},"logStartOffset":${p.logStartOffset},"bytes":${p.bytes.byteLength}}`;
  }
  return json + "]}";
}

/**
 * The frame of a push of subscription `id`: the binary records frame
 * (src/protocol/ws_records_frames.ts) to a client that asked for it in its hello, unless a
 * partition has an error; else the JSON `records` frame with `"session": null`.
 *
 * @param id the subscription's id
 * @param partitions the partitions pushed
 * @param binary whether the client takes binary records frames
 * @param alloc where the frame is written (the shared scratch buffer: send it at once)
 * @returns the message bytes
 */
export function recordsPushFrame(
  id: number,
  partitions: PartitionFetchResult[],
  binary: boolean,
  alloc: (size: number) => Uint8Array<ArrayBuffer>,
): Uint8Array<ArrayBuffer> {
  const frame = binary ? encodeRecordsFrame(id, partitions, alloc) : null;
  if (frame !== null) return frame;
  const payload: Uint8Array[] = [];
  const json = recordsAnswerJson(id, { session: null, partitions }, payload);
  return encodeJsonFrame(json, payload, alloc);
}
