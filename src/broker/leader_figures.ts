/**
 * A broker's side of the leaders' offset reports (coordination/leader_reports.ts): the
 * report of the partitions it leads, written with each heartbeat, and a partition's log
 * end offset for group lag from any broker (live where it leads, else the leader's latest
 * report with its age; the reports are read at most every 250 ms).
 *
 * @module
 */
import {
  encodeReport,
  figuresKey,
  readLeaderReports,
  type ReportChunk,
  type ReportedFigures,
} from "../coordination/leader_reports.ts";
import type { LocalTopics } from "./local_topics.ts";
import type { PartitionLookup } from "./partition_lookup.ts";

/** What {@linkcode LeaderFigures} needs. */
export interface LeaderFiguresOptions {
  /** this broker's id */
  brokerId: number;
  /** the shared KV */
  kv: Deno.Kv;
  /** the hosted topics */
  local: LocalTopics;
  /** finds topics */
  lookup: PartitionLookup;
}

/** Reports and reads leaders' figures. */
export class LeaderFigures {
  readonly #o: LeaderFiguresOptions;

  /** @param opts id, KV and topics */
  constructor(opts: LeaderFiguresOptions) {
    this.#o = opts;
  }

  /**
   * A partition's log end offset as consumers see it (the high watermark) for lag, from
   * any broker: live when this broker leads it, else the leader's latest report (written
   * with its heartbeat), with the report's age.
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the offset and its age in ms (0: live), or null when nobody reported it
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION
   */
  async lagEndOffset(
    topic: string,
    partition: number,
  ): Promise<{ offset: number; ageMs: number } | null> {
    const state = await this.#o.lookup.topic(topic);
    const r = state.replicas[partition];
    if (r && r.role === "leader" && state.meta.partitions[partition]?.leader === this.#o.brokerId) {
      return { offset: r.highWatermark, ageMs: 0 };
    }
    const now = Date.now();
    if (this.#reports === null || now - this.#reports.readMs > 250) {
      this.#reports = { readMs: now, figures: await readLeaderReports(this.#o.kv) };
    }
    const f = this.#reports.figures.get(figuresKey(topic, partition));
    return f ? { offset: f.highWatermark, ageMs: Math.max(0, now - f.atMs) } : null;
  }

  #reports: { readMs: number; figures: Map<string, ReportedFigures> } | null = null;

  /**
   * The figures of the partitions this broker leads, for its heartbeat.
   *
   * @returns the report's chunks
   */
  report(): ReportChunk[] {
    const figures = [];
    for (const t of this.#o.local.all()) {
      for (const p of t.meta.partitions) {
        const r = t.replicas[p.partition];
        if (!r || r.role !== "leader" || p.leader !== this.#o.brokerId) continue;
        figures.push({
          topic: t.meta.name,
          partition: p.partition,
          highWatermark: r.highWatermark,
          logEndOffset: r.logEndOffset,
          bytes: r.log.size,
        });
      }
    }
    return encodeReport(Date.now(), figures);
  }
}
