/**
 * Topic configs: Kafka's names with string values, validated in one place before they are
 * stored in KV, so a broker never meets a config it cannot apply.
 *
 * | name                        | values                                   | default         |
 * | --------------------------- | ---------------------------------------- | --------------- |
 * | `retention.ms`              | integer ≥ -1 (-1 = keep forever)         | 604800000 (7 d) |
 * | `retention.bytes`           | integer ≥ -1 (-1 = no size limit)        | -1              |
 * | `segment.bytes`             | integer 14 … 2^31-1                      | 1073741824      |
 * | `segment.ms`                | integer ≥ 1                              | 604800000       |
 * | `index.interval.bytes`      | integer 1 … 2^31-1                       | 4096            |
 * | `cleanup.policy`            | `delete`, `compact` or `compact,delete` (either order) | delete |
 * | `min.cleanable.dirty.ratio` | number 0 … 1: compact once this share of the log is dirty | 0.5 |
 * | `delete.retention.ms`       | integer ≥ 0: how long a tombstone outlives its first compaction | 86400000 (1 d) |
 * | `min.compaction.lag.ms`     | integer ≥ 0: a record stays uncompacted at least this long | 0 |
 * | `min.insync.replicas`       | integer ≥ 1                              | 1               |
 * | `max.message.bytes`         | integer ≥ 0 (largest record batch)       | 1048588         |
 * | `message.timestamp.type`    | `CreateTime` or `LogAppendTime`          | CreateTime      |
 * | `flush.messages`            | `1`: fsync after every append            | (OS flushes)    |
 * | `flush.ms`                  | integer ≥ 0: fsync at most this long after an append (0 = every append) | (OS flushes) |
 * | `unclean.leader.election.enable` | `true`: a replica outside the ISR may lead when no ISR member is alive | false |
 * | `compression.type`          | `producer` (store batches as sent), `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd` (the broker recompresses) | producer |
 *
 * `cleanup.policy=compact` keeps, per key, only the latest record (see
 * `src/storage/log_cleaner.ts`); such a topic takes only records with a key. Without
 * `delete` in the policy, `retention.ms` and `retention.bytes` delete nothing.
 *
 * With neither `flush.messages` nor `flush.ms`, the OS decides when data reaches the disk,
 * as Kafka does by default: an acknowledged record survives a broker crash but not a host
 * crash unless the topic asks for fsync.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";

/** A topic's configs as stored: Kafka names to string values, only those set explicitly. */
export type TopicConfigs = Record<string, string>;

type Check = (value: string, name: string) => void;

const INT32_MAX = 0x7fffffff;

function integer(min: number, max = Number.MAX_SAFE_INTEGER): Check {
  return (value, name) => {
    if (!/^-?\d+$/.test(value)) {
      throw invalid(`Config "${name}" must be an integer, got "${value.slice(0, 50)}"`);
    }
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw invalid(`Config "${name}" must be an integer from ${min} to ${max}, got ${value}`);
    }
  };
}

function oneOf(...allowed: string[]): Check {
  return (value, name) => {
    if (!allowed.includes(value)) {
      throw invalid(
        `Config "${name}" must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got "${
          value.slice(0, 50)
        }"`,
      );
    }
  };
}

const CHECKS: Record<string, Check> = {
  "retention.ms": integer(-1),
  "retention.bytes": integer(-1),
  "segment.bytes": integer(14, INT32_MAX),
  "segment.ms": integer(1),
  "index.interval.bytes": integer(1, INT32_MAX),
  "cleanup.policy": (value, name) => {
    if (parseCleanupPolicy(value) === null) {
      throw invalid(
        `Config "${name}" must be "delete", "compact" or "compact,delete", got "${
          value.slice(0, 50)
        }"`,
      );
    }
  },
  "min.cleanable.dirty.ratio": (value, name) => {
    const n = /^\d+(\.\d+)?([eE]-?\d+)?$/.test(value) ? Number(value) : NaN;
    if (!(n >= 0 && n <= 1)) {
      throw invalid(`Config "${name}" must be a number from 0 to 1, got "${value.slice(0, 50)}"`);
    }
  },
  "delete.retention.ms": integer(0),
  "min.compaction.lag.ms": integer(0),
  "min.insync.replicas": integer(1, INT32_MAX),
  "max.message.bytes": integer(0, INT32_MAX),
  "message.timestamp.type": oneOf("CreateTime", "LogAppendTime"),
  "flush.messages": (value, name) => {
    integer(1)(value, name);
    if (value !== "1") {
      throw invalid(
        `Config "${name}" supports only "1" (fsync every append); use "flush.ms" for periodic fsync`,
      );
    }
  },
  "flush.ms": integer(0),
  "unclean.leader.election.enable": oneOf("true", "false"),
  "compression.type": oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
};

/** A parsed `cleanup.policy`: which of Kafka's two policies apply. */
export interface CleanupPolicy {
  /** keep only the latest record per key */
  compact: boolean;
  /** delete old segments per retention.ms and retention.bytes */
  delete: boolean;
}

/**
 * Parses a `cleanup.policy` value as Kafka does: a comma-separated list of `delete` and
 * `compact`, each at most once, in either order (spaces around the commas allowed).
 *
 * @param value the config value (undefined: the default, `delete`)
 * @returns the policies, or null if the value is not a valid policy
 * @example
 * ```ts
 * parseCleanupPolicy("delete,compact"); // { compact: true, delete: true }
 * parseCleanupPolicy("shred"); // null
 * ```
 */
export function parseCleanupPolicy(value: string | undefined): CleanupPolicy | null {
  if (value === undefined) return { compact: false, delete: true };
  const parts = value.split(",").map((p) => p.trim());
  const policy = { compact: false, delete: false };
  for (const p of parts) {
    if (p !== "compact" && p !== "delete") return null;
    if (policy[p]) return null;
    policy[p] = true;
  }
  return policy;
}

/** The names of every supported topic config. */
export const TOPIC_CONFIG_NAMES: readonly string[] = Object.keys(CHECKS);

function invalid(message: string): RillError {
  return new RillError("INVALID_CONFIG", message);
}

/**
 * Validates a `configs` object from a request. A `null` value is allowed only when
 * `allowNull` is set (an alter that removes a config, reverting it to its default).
 *
 * @param raw the configs field of a request body
 * @param allowNull accept null values (for alter)
 * @returns the configs, with null kept for removals
 * @throws {RillError} INVALID_CONFIG naming the first bad entry, INVALID_REQUEST when
 *   `raw` is not an object
 * @example
 * ```ts
 * validateTopicConfigs({ "retention.ms": "60000" }); // ok
 * validateTopicConfigs({ "retention.ms": 60000 }); // throws INVALID_CONFIG: values are strings
 * ```
 */
export function validateTopicConfigs(
  raw: unknown,
  allowNull = false,
): Record<string, string | null> {
  if (raw === undefined) return {};
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new RillError("INVALID_REQUEST", `"configs" must be an object of name to string value`);
  }
  const out: Record<string, string | null> = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const check = CHECKS[name];
    if (!check) {
      throw invalid(
        `Unknown topic config "${name.slice(0, 100)}"; supported: ${TOPIC_CONFIG_NAMES.join(", ")}`,
      );
    }
    if (value === null && allowNull) {
      out[name] = null;
      continue;
    }
    if (typeof value !== "string") {
      throw invalid(`Config "${name}" must be given as a string, as Kafka configs are`);
    }
    check(value, name);
    out[name] = value;
  }
  return out;
}

/**
 * Applies validated changes to stored configs: a string sets, null removes.
 *
 * @param current the stored configs
 * @param changes validated changes
 * @returns the new configs (a new object)
 * @example
 * ```ts
 * mergeTopicConfigs({ "retention.ms": "1" }, { "retention.ms": null, "segment.ms": "5" });
 * // { "segment.ms": "5" }
 * ```
 */
export function mergeTopicConfigs(
  current: TopicConfigs,
  changes: Record<string, string | null>,
): TopicConfigs {
  const out: TopicConfigs = { ...current };
  for (const [name, value] of Object.entries(changes)) {
    if (value === null) delete out[name];
    else out[name] = value;
  }
  return out;
}
