/**
 * The replication flags of `rill broker` and `rill follower`: timing overrides (so tests
 * and small clusters can fail over in a second or two, and apply retention often) and the
 * observer's topic list.
 *
 * @module
 */
import type { BrokerConfig } from "../broker/config.ts";
import { UsageError } from "./common.ts";

/** The parseArgs options of the replication flags. */
export const REPLICATION_OPTIONS = {
  topics: { type: "string" },
  "session-timeout-ms": { type: "string" },
  "heartbeat-interval-ms": { type: "string" },
  "replica-lag-time-max-ms": { type: "string" },
  "metadata-poll-ms": { type: "string" },
  "retention-check-ms": { type: "string" },
  "log-cleaner-backoff-ms": { type: "string" },
  "replica-fetch": { type: "string" },
  "auto-leader-rebalance-enable": { type: "string" },
  "leader-imbalance-per-broker-percentage": { type: "string" },
  "leader-imbalance-check-interval-seconds": { type: "string" },
  "replica-replacement-delay-ms": { type: "string" },
  "replication-throttle-bytes": { type: "string" },
  "max-concurrent-moves": { type: "string" },
  "max-concurrent-moves-per-broker": { type: "string" },
  "auto-rebalance-interval-seconds": { type: "string" },
  rack: { type: "string" },
} as const;

/** The help lines of the replication flags. */
export const REPLICATION_HELP =
  `  --topics A,B           (follower only) the topics to copy (default: all)
  --session-timeout-ms N     a broker silent this long is dead (default 6000)
  --heartbeat-interval-ms N  how often the broker heartbeats (default min(2000, session/3))
  --replica-lag-time-max-ms N  a follower behind this long leaves the ISR (default 10000)
  --metadata-poll-ms N       how often metadata changes are polled (default 1000)
  --retention-check-ms N     how often retention is applied to every log (default 60000)
  --log-cleaner-backoff-ms N  the pause between compaction passes (default 15000)
  --replica-fetch session|partition  one fetch per leader for all copied partitions
                             (default session), or one long poll per partition
  --rack NAME                the rack (zone) of this broker: replicas spread over racks;
                             of a follower: Kafka consumers with client.rack=NAME are
                             sent to it to fetch (KIP-392)
  --auto-leader-rebalance-enable true|false  move leadership back to preferred leaders
                             when imbalanced (default true)
  --leader-imbalance-per-broker-percentage N  imbalance that triggers it (default 10)
  --leader-imbalance-check-interval-seconds N  how often it is checked (default 300)
  --replica-replacement-delay-ms N  rebuild the replicas of a broker dead this long on
                             live brokers (default 600000)
  --replication-throttle-bytes N  byte rate per second a broker copies into moving
                             replicas, and sends to them as leader (default 0: off)
  --max-concurrent-moves N   partitions the controller moves at once (default 5)
  --max-concurrent-moves-per-broker N  of those, the most any one broker takes part
                             in (as leader, or a replica moving onto or off it; default 1)
  --auto-rebalance-interval-seconds N  continuous balancing: plan and run a rebalance
                             this often while nothing moves (default 0: off)
`;

/** Parsed replication flags. */
export interface ReplicationArgs {
  /** follower only: the topics to copy (undefined: all) */
  topics?: string[];
  /** broker setting overrides */
  config: Partial<BrokerConfig>;
  /** `--rack` */
  rack?: string;
}

/**
 * Reads the replication flags from parsed values.
 *
 * @param values the values parseArgs returned
 * @returns topics and settings
 * @throws {UsageError} on a malformed number
 * @example
 * ```ts
 * parseReplicationArgs({ "session-timeout-ms": "1500" }).config.sessionTimeoutMs; // 1500
 * ```
 */
export function parseReplicationArgs(
  values: Record<string, string | boolean | undefined>,
): ReplicationArgs {
  const ms = (name: string): number | undefined => {
    const v = values[name];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !/^\d{1,9}$/.test(v) || Number(v) < 1) {
      throw new UsageError(`--${name} must be a positive integer of milliseconds, got "${v}"`);
    }
    return Number(v);
  };
  const config: Partial<BrokerConfig> = {};
  const session = ms("session-timeout-ms");
  if (session !== undefined) {
    config.sessionTimeoutMs = session;
    config.heartbeatIntervalMs = Math.max(10, Math.min(2000, Math.floor(session / 3)));
    config.controllerIntervalMs = Math.max(50, Math.min(500, Math.floor(session / 4)));
  }
  const heartbeat = ms("heartbeat-interval-ms");
  if (heartbeat !== undefined) config.heartbeatIntervalMs = heartbeat;
  const lag = ms("replica-lag-time-max-ms");
  if (lag !== undefined) config.replicaLagTimeMaxMs = lag;
  const poll = ms("metadata-poll-ms");
  if (poll !== undefined) config.metadataPollMs = poll;
  const retentionCheck = ms("retention-check-ms");
  if (retentionCheck !== undefined) config.retentionCheckIntervalMs = retentionCheck;
  const cleanerBackoff = ms("log-cleaner-backoff-ms");
  if (cleanerBackoff !== undefined) config.logCleanerBackoffMs = cleanerBackoff;
  const mode = values["replica-fetch"];
  if (mode !== undefined) {
    if (mode !== "session" && mode !== "partition") {
      throw new UsageError(`--replica-fetch must be "session" or "partition", got "${mode}"`);
    }
    config.replicaFetchSessions = mode === "session";
  }
  const int = (name: string, min: number): number | undefined => {
    const v = values[name];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !/^\d{1,15}$/.test(v) || Number(v) < min) {
      throw new UsageError(`--${name} must be an integer of at least ${min}, got "${v}"`);
    }
    return Number(v);
  };
  const auto = values["auto-leader-rebalance-enable"];
  if (auto !== undefined) {
    if (auto !== "true" && auto !== "false") {
      throw new UsageError(`--auto-leader-rebalance-enable must be true or false, got "${auto}"`);
    }
    config.autoLeaderRebalanceEnable = auto === "true";
  }
  const pct = int("leader-imbalance-per-broker-percentage", 0);
  if (pct !== undefined) {
    if (pct > 100) {
      throw new UsageError(
        `--leader-imbalance-per-broker-percentage must be at most 100, got "${pct}"`,
      );
    }
    config.leaderImbalancePerBrokerPercentage = pct;
  }
  const check = int("leader-imbalance-check-interval-seconds", 1);
  if (check !== undefined) config.leaderImbalanceCheckIntervalMs = check * 1000;
  const delay = int("replica-replacement-delay-ms", 1);
  if (delay !== undefined) config.replicaReplacementDelayMs = delay;
  const throttle = int("replication-throttle-bytes", 0);
  if (throttle !== undefined) config.replicationThrottleBytes = throttle;
  const moves = int("max-concurrent-moves", 1);
  if (moves !== undefined) config.maxConcurrentMoves = moves;
  const perBroker = int("max-concurrent-moves-per-broker", 1);
  if (perBroker !== undefined) config.maxConcurrentMovesPerBroker = perBroker;
  const autoRebalance = int("auto-rebalance-interval-seconds", 0);
  if (autoRebalance !== undefined) config.autoRebalanceIntervalMs = autoRebalance * 1000;
  const rack = values.rack;
  if (rack !== undefined && (typeof rack !== "string" || !/^[\w.:-]{1,64}$/.test(rack))) {
    throw new UsageError(
      `--rack must be 1-64 letters, digits or ".", ":", "-", "_", got "${rack}"`,
    );
  }
  const topics = values.topics;
  return {
    config,
    ...(typeof rack === "string" ? { rack } : {}),
    topics: typeof topics === "string"
      ? topics.split(",").map((t) => t.trim()).filter((t) => t !== "")
      : undefined,
  };
}
