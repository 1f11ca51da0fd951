/**
 * A partition log's settings (Kafka's topic configs of the same names), their defaults and
 * their checks.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";

/** When appended data is fsynced. */
/** When appended data is fsynced. */
export type FlushPolicy = { mode: "always" } | { mode: "interval"; ms: number } | {
  mode: "os";
};

/** A log's settings (Kafka's topic configs of the same names). */
export interface LogConfig {
  /** roll the active segment before it would exceed this many bytes (segment.bytes) */
  segmentBytes: number;
  /**
   * roll the active segment once this many ms have passed since its first append (by the
   * log's clock; for a segment found on disk at open, since its first batch's timestamp, as
   * Kafka) (segment.ms)
   */
  segmentMs: number;
  /** delete closed segments whose newest record is older than this; -1 = keep (retention.ms) */
  retentionMs: number;
  /** delete oldest closed segments while the log is bigger than this; -1 = no limit */
  retentionBytes: number;
  /** bytes appended between two offset index entries (index.interval.bytes) */
  indexIntervalBytes: number;
  /** when to fsync */
  flush: FlushPolicy;
  /**
   * forget an idempotent producer whose newest batch's timestamp is older than this, when
   * retention is applied (producer.id.expiration.ms); default one day
   */
  producerIdExpirationMs?: number;
  /** keep only the latest record per key (cleanup.policy includes compact); default false */
  compact?: boolean;
  /** compact once dirty bytes / (clean + dirty bytes) reach this (min.cleanable.dirty.ratio); 0.5 */
  minCleanableDirtyRatio?: number;
  /** how long a tombstone is kept after its segment was first compacted (delete.retention.ms); 1 d */
  deleteRetentionMs?: number;
  /** a record is not compacted until its segment is this old (min.compaction.lag.ms); 0 */
  minCompactionLagMs?: number;
}

/** Kafka's defaults: 1 GiB segments, 7 days, no size limit, 4 KiB index interval, OS flush. */
export const DEFAULT_LOG_CONFIG: LogConfig = Object.freeze({
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * 24 * 60 * 60 * 1000,
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  retentionBytes: -1,
  indexIntervalBytes: 4096,
  flush: Object.freeze({ mode: "os" }) as FlushPolicy,
});

/**
 * Checks a log's settings.
 *
 * @param config the settings
 * @throws {RillError} INVALID_CONFIG if a setting is out of range
 */
export function checkConfig(config: LogConfig): void {
  const positive = (name: keyof LogConfig, v: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isSafeInteger(v) || v < 1 || v > max) {
      throw new RillError(
        "INVALID_CONFIG",
        `Log config ${name} must be an integer in 1..${max}, got ${v}`,
      );
    }
  };
  positive("segmentBytes", config.segmentBytes, 0x7fffffff);
  positive("segmentMs", config.segmentMs);
  positive("indexIntervalBytes", config.indexIntervalBytes, 0x7fffffff);
  if (config.producerIdExpirationMs !== undefined) {
    positive("producerIdExpirationMs", config.producerIdExpirationMs);
  }
  for (const name of ["retentionMs", "retentionBytes"] as const) {
    const v = config[name];
    if (!Number.isSafeInteger(v) || v < -1) {
      throw new RillError(
        "INVALID_CONFIG",
        `Log config ${name} must be -1 or a non-negative integer, got ${v}`,
      );
    }
  }
  const f = config.flush;
  if (!f || !["always", "interval", "os"].includes(f.mode)) {
    throw new RillError(
      "INVALID_CONFIG",
      `Log config flush.mode must be "always", "interval" or "os"`,
    );
  }
  if (f.mode === "interval" && (!Number.isSafeInteger(f.ms) || f.ms < 1)) {
    throw new RillError(
      "INVALID_CONFIG",
      `Log config flush.ms must be a positive integer, got ${f.ms}`,
    );
  }
}
