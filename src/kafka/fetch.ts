/**
 * Fetch (API 1), ListOffsets (API 2) and OffsetForLeaderEpoch (API 23): reads through the
 * broker (committed batches up to the high watermark, whole batches served byte for byte,
 * long-polling on max wait / min bytes), per-partition errors from the RillError codes.
 * There are no transactions, so the last stable offset is the high watermark and no
 * transaction is ever aborted; fetch sessions are not kept (session id 0: full fetches).
 *
 * @module
 */
import type { FetchResult } from "../broker/replica.ts";
import { RillError } from "../protocol/errors.ts";
import { allowed, type KafkaContext, type Session } from "./context.ts";
import { KAFKA_ERROR, kafkaCode } from "./errors.ts";

interface FetchPartitionReq {
  partition: number;
  fetchOffset: number;
  partitionMaxBytes: number;
}

interface Slot {
  topic: string;
  partition: number;
  offset: number;
  maxBytes: number;
  errorCode: number;
  result: FetchResult | null;
  highWatermark: number;
  logStartOffset: number;
}

/**
 * Fetch.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleFetch(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown>> {
  const broker = ctx.broker;
  const maxWaitMs = Math.max(
    0,
    Math.min(req.maxWaitMs as number, broker.config.fetchMaxWaitLimitMs),
  );
  const minBytes = Math.max(0, req.minBytes as number);
  const totalMax = Math.max(1, Math.min(req.maxBytes as number, broker.config.fetchMaxBytesLimit));
  const topics = req.topics as { topic: string; partitions: FetchPartitionReq[] }[];
  const slots: Slot[] = [];
  for (const t of topics) {
    const mayRead = allowed(ctx, s, { type: "topic", name: t.topic }, "read");
    for (const p of t.partitions) {
      slots.push({
        topic: t.topic,
        partition: p.partition,
        offset: p.fetchOffset,
        maxBytes: Math.max(1, p.partitionMaxBytes),
        errorCode: mayRead ? 0 : KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED,
        result: null,
        highWatermark: -1,
        logStartOffset: -1,
      });
    }
  }
  const readAll = async () => {
    let left = totalMax;
    let bytes = 0;
    for (const slot of slots) {
      if (slot.errorCode === KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED) continue;
      slot.errorCode = 0;
      slot.result = null;
      if (left <= 0) {
        // Over the response limit: later partitions answer empty (the client asks again).
        continue;
      }
      try {
        const r = await broker.fetch(slot.topic, slot.partition, slot.offset, {
          maxBytes: Math.min(slot.maxBytes, left),
          maxWaitMs: 0,
          minBytes: 0,
        });
        slot.result = r;
        slot.highWatermark = r.highWatermark;
        slot.logStartOffset = r.logStartOffset;
        left -= r.bytes.length;
        bytes += r.bytes.length;
      } catch (e) {
        slot.errorCode = kafkaCode(e);
        if (e instanceof RillError) {
          const d = e.details as { logStartOffset?: number; highWatermark?: number };
          if (typeof d.logStartOffset === "number") slot.logStartOffset = d.logStartOffset;
          if (typeof d.highWatermark === "number") slot.highWatermark = d.highWatermark;
        } else ctx.log(`kafka: fetch of ${slot.topic}-${slot.partition} failed: ${e}`);
      }
    }
    return bytes;
  };
  let bytes = await readAll();
  if (bytes < Math.max(1, minBytes) && maxWaitMs > 0 && !broker.draining) {
    // Long poll: wake when any readable partition gains data, or at max wait.
    const waiting = slots.filter((x) => x.errorCode === 0);
    if (waiting.length > 0) {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), maxWaitMs);
      try {
        await Promise.race(
          waiting.map((slot) =>
            broker.fetch(slot.topic, slot.partition, slot.offset, {
              maxBytes: 1,
              maxWaitMs,
              minBytes: Math.max(1, minBytes - bytes),
              signal: abort.signal,
            }).catch(() => {})
          ),
        );
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      bytes = await readAll();
    }
  }
  const responses: { topic: string; partitions: unknown[] }[] = [];
  for (const slot of slots) {
    let t = responses.at(-1);
    if (!t || t.topic !== slot.topic) responses.push(t = { topic: slot.topic, partitions: [] });
    t.partitions.push({
      partitionIndex: slot.partition,
      errorCode: slot.errorCode,
      highWatermark: slot.highWatermark,
      lastStableOffset: slot.highWatermark,
      logStartOffset: slot.logStartOffset,
      abortedTransactions: null,
      preferredReadReplica: -1,
      records: slot.result?.bytes ?? new Uint8Array(0),
    });
  }
  return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses };
}

/**
 * ListOffsets: timestamp −2 is the log start offset, −1 the high watermark, else the first
 * offset whose timestamp is at or after it (the high watermark when none is that recent).
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleListOffsets(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown>> {
  const topics = [];
  for (
    const t of req.topics as {
      name: string;
      partitions: { partitionIndex: number; timestamp: number }[];
    }[]
  ) {
    const mayDescribe = allowed(ctx, s, { type: "topic", name: t.name }, "describe");
    const partitions = [];
    for (const p of t.partitions) {
      const out = {
        partitionIndex: p.partitionIndex,
        errorCode: 0,
        oldStyleOffsets: [] as number[],
        timestamp: -1,
        offset: -1,
        leaderEpoch: -1,
      };
      if (!mayDescribe) out.errorCode = KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED;
      else {
        try {
          const at = p.timestamp === -2
            ? "earliest"
            : p.timestamp === -1
            ? "latest"
            : { timestamp: p.timestamp };
          out.offset = await ctx.broker.listOffset(t.name, p.partitionIndex, at);
          out.oldStyleOffsets = [out.offset];
          const replica = await ctx.broker.readableReplica(t.name, p.partitionIndex);
          out.leaderEpoch = replica.leaderEpoch;
          if (typeof at === "object") out.timestamp = p.timestamp;
        } catch (e) {
          out.errorCode = kafkaCode(e);
        }
      }
      partitions.push(out);
    }
    topics.push({ name: t.name, partitions });
  }
  return { throttleTimeMs: 0, topics };
}

/**
 * OffsetForLeaderEpoch: the largest epoch ≤ the asked one the leader knows, and where it
 * ends (clients use it to detect log truncation after a leader change).
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleOffsetForLeaderEpoch(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown>> {
  const topics = [];
  for (
    const t of req.topics as {
      topic: string;
      partitions: { partition: number; leaderEpoch: number }[];
    }[]
  ) {
    const mayDescribe = allowed(ctx, s, { type: "topic", name: t.topic }, "describe");
    const partitions = [];
    for (const p of t.partitions) {
      const out = { errorCode: 0, partition: p.partition, leaderEpoch: -1, endOffset: -1 };
      if (!mayDescribe) out.errorCode = KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED;
      else {
        try {
          const r = await ctx.broker.epochEndOffset(t.topic, p.partition, p.leaderEpoch);
          out.leaderEpoch = r.epoch;
          out.endOffset = r.endOffset;
        } catch (e) {
          out.errorCode = kafkaCode(e);
        }
      }
      partitions.push(out);
    }
    topics.push({ topic: t.topic, partitions });
  }
  return { throttleTimeMs: 0, topics };
}
