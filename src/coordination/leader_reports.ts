/**
 * Leaders' offset reports: every broker writes, with each heartbeat (in the same atomic KV
 * commit, so no extra KV operation), the high watermark, log end offset and size of the
 * partitions it leads. Any broker can then answer a partition's log end offset (group lag)
 * or size (rebalance plans) without hosting it, with the age of the figure.
 *
 * A report is split into chunks that each stay well under a KV value's 64 KiB limit.
 *
 * @module
 */
import { leaderReportsPrefix } from "./kv_keys.ts";

/** One partition's figures in a report. */
export interface PartitionFigures {
  /** the high watermark (what consumers see as the log end) */
  highWatermark: number;
  /** the leader's log end offset */
  logEndOffset: number;
  /** the bytes of the leader's log */
  bytes: number;
}

/** One chunk of a report as stored: per topic, flat [partition, hw, leo, bytes, ...]. */
export interface ReportChunk {
  /** when the report was made, ms since the epoch */
  atMs: number;
  /** per topic the flattened figures */
  topics: Record<string, number[]>;
}

/** A partition's figures as read back, with where and when they come from. */
export interface ReportedFigures extends PartitionFigures {
  /** the reporting broker (the leader when it reported) */
  brokerId: number;
  /** when it reported, ms since the epoch */
  atMs: number;
}

/** The most figures (partitions) in one chunk: 4 numbers each stay far under 64 KiB. */
const PARTITIONS_PER_CHUNK = 800;

/**
 * Splits a broker's figures into stored chunks.
 *
 * @param atMs the report time
 * @param figures per partition (topic, partition and figures)
 * @returns the chunks (at least one, possibly empty, so a broker leading nothing says so)
 * @example
 * ```ts
 * encodeReport(Date.now(), [{ topic: "t", partition: 0, highWatermark: 5, logEndOffset: 5, bytes: 300 }]);
 * ```
 */
export function encodeReport(
  atMs: number,
  figures: readonly ({ topic: string; partition: number } & PartitionFigures)[],
): ReportChunk[] {
  const chunks: ReportChunk[] = [];
  let current: ReportChunk = { atMs, topics: {} };
  let count = 0;
  for (const f of figures) {
    if (count === PARTITIONS_PER_CHUNK) {
      chunks.push(current);
      current = { atMs, topics: {} };
      count = 0;
    }
    (current.topics[f.topic] ??= []).push(f.partition, f.highWatermark, f.logEndOffset, f.bytes);
    count++;
  }
  chunks.push(current);
  return chunks;
}

/**
 * The key of a partition in {@linkcode readLeaderReports}'s answer.
 *
 * @param topic the topic
 * @param partition the partition
 * @returns the key
 */
export const figuresKey = (topic: string, partition: number): string =>
  topic + "\u0000" + partition;

/**
 * Reads every broker's latest report (one KV list). When two brokers report the same
 * partition (leadership moved between their heartbeats), the newer report wins.
 *
 * @param kv the shared KV
 * @returns figures by {@linkcode figuresKey}
 */
export async function readLeaderReports(kv: Deno.Kv): Promise<Map<string, ReportedFigures>> {
  const out = new Map<string, ReportedFigures>();
  for await (const e of kv.list<ReportChunk>({ prefix: leaderReportsPrefix() })) {
    const brokerId = Number(e.key[2]);
    const { atMs, topics } = e.value;
    for (const [topic, flat] of Object.entries(topics)) {
      for (let i = 0; i + 3 < flat.length; i += 4) {
        const k = figuresKey(topic, flat[i]);
        const prev = out.get(k);
        if (prev && prev.atMs >= atMs) continue;
        out.set(k, {
          brokerId,
          atMs,
          highWatermark: flat[i + 1],
          logEndOffset: flat[i + 2],
          bytes: flat[i + 3],
        });
      }
    }
  }
  return out;
}
