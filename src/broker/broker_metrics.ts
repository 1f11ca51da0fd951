/**
 * The broker's gauges, read at scrape time from what it already keeps (nothing here runs on
 * the produce or fetch path): its identity and roles, each partition it leads (offsets, size,
 * segments, ISR, under-replicated and under-min-ISR flags), each follower's lag behind it,
 * preferred-leader imbalance, and consumer group lag of the partitions it leads (committed
 * offsets read from KV, as a group coordinator would report them).
 *
 * @module
 */
import { groupsPrefix } from "../coordination/kv_keys.ts";
import type { CommittedOffset } from "../coordination/group_keys.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { TopicState } from "./local_topics.ts";

/** What the collectors read from the broker. */
export interface BrokerMetricsSource {
  /** the broker id */
  id: number;
  /** "broker" or "follower" */
  role: string;
  /** the cluster id */
  clusterId: string;
  /** the KV (committed offsets) */
  kv: Deno.Kv;
  /** every cached topic with the replicas hosted here */
  topics(): Iterable<TopicState>;
  /** whether this broker holds the controller lease */
  controller(): boolean;
  /** the clock */
  now(): number;
  /**
   * whether the KV answers (kv_health.ts): while it does not, the group lag gauge, which
   * reads committed offsets from KV, is left out so that a scrape does not wait on the KV
   */
  kvReachable?(): boolean;
  /** the age of the oldest KV call still waiting for an answer, in ms (0 when none) */
  kvOldestPendingMs?(): number;
}

/**
 * Declares the broker's scrape-time gauges on `metrics`.
 *
 * @param metrics the broker's metrics
 * @param src what the gauges read
 * @example
 * ```ts
 * installBrokerGauges(broker.metrics, { id: 1, role: "broker", clusterId, kv, topics, controller, now });
 * ```
 */
export function installBrokerGauges(metrics: Metrics, src: BrokerMetricsSource): void {
  // Whether the KV answers (kv_health.ts), as /healthz shows it.
  metrics.gauge({
    name: "rill_kv_reachable",
    help: "1 while the KV answers, 0 while some KV call has been pending past the stall bound.",
    collect: (g) => g.set(src.kvReachable?.() === false ? 0 : 1),
  });
  metrics.gauge({
    name: "rill_kv_oldest_pending_seconds",
    help: "Age of the oldest KV call still waiting for an answer (0 when none).",
    collect: (g) => g.set((src.kvOldestPendingMs?.() ?? 0) / 1000),
  });
  metrics.gauge({
    name: "rill_broker_info",
    help: "Always 1; the labels tell the broker id, role and cluster id.",
    labelNames: ["broker_id", "role", "cluster_id"],
    collect: (g) =>
      g.set({ broker_id: String(src.id), role: src.role, cluster_id: src.clusterId }, 1),
  });
  metrics.gauge({
    name: "rill_controller",
    help: "1 while this broker holds the controller lease, else 0.",
    collect: (g) => g.set(src.controller() ? 1 : 0),
  });
  metrics.gauge({
    name: "rill_partitions_hosted",
    help: "Partition replicas hosted by this broker (leader, follower or observer).",
    collect: (g) => {
      let n = 0;
      for (const t of src.topics()) for (const r of t.replicas) if (r) n++;
      g.set(n);
    },
  });
  metrics.gauge({
    name: "rill_partitions_led",
    help: "Partitions this broker leads.",
    collect: (g) => {
      let n = 0;
      for (const t of src.topics()) for (const r of t.replicas) if (r?.role === "leader") n++;
      g.set(n);
    },
  });
  metrics.gauge({
    name: "rill_preferred_leader_imbalance",
    help:
      "Partitions whose preferred leader (first replica) is this broker but that another broker (or none) leads.",
    collect: (g) => {
      let n = 0;
      for (const t of src.topics()) {
        for (const p of t.meta.partitions) {
          if (p.replicas[0] === src.id && p.leader !== src.id) n++;
        }
      }
      g.set(n);
    },
  });

  type P = "topic" | "partition";
  const led = (name: string, help: string, value: (t: TopicState, p: number) => number) =>
    metrics.gauge<P>({
      name,
      help,
      labelNames: ["topic", "partition"],
      collect: (g) => {
        for (const t of src.topics()) {
          t.replicas.forEach((r, p) => {
            if (r?.role === "leader" && !r.closing) {
              g.set({ topic: t.meta.name, partition: String(p) }, value(t, p));
            }
          });
        }
      },
    });
  const replica = (t: TopicState, p: number) => t.replicas[p]!;
  led(
    "rill_partition_log_start_offset",
    "First offset still in the log of a partition this broker leads.",
    (t, p) => replica(t, p).logStartOffset,
  );
  led(
    "rill_partition_log_end_offset",
    "Offset after the last record appended to a partition this broker leads.",
    (t, p) => replica(t, p).logEndOffset,
  );
  led(
    "rill_partition_high_watermark",
    "High watermark (offset after the last committed record) of a partition this broker leads.",
    (t, p) => replica(t, p).highWatermark,
  );
  led(
    "rill_partition_size_bytes",
    "Bytes on disk of the segments of a partition this broker leads.",
    (t, p) => replica(t, p).log.size,
  );
  led(
    "rill_partition_segments",
    "Segments of a partition this broker leads.",
    (t, p) => replica(t, p).log.segmentCount,
  );
  led(
    "rill_partition_log_failed",
    "1 while the log of a partition this broker leads failed on an I/O error (ENOSPC) and takes no writes; it reopens through recovery once space is back.",
    (t, p) => replica(t, p).log.failure === null ? 0 : 1,
  );
  led(
    "rill_partition_replicas",
    "Assigned replicas of a partition this broker leads.",
    (t, p) => t.meta.partitions[p]?.replicas.length ?? 0,
  );
  led(
    "rill_partition_isr",
    "In-sync replicas of a partition this broker leads.",
    (t, p) => replica(t, p).isr.length,
  );
  led(
    "rill_partition_under_replicated",
    "1 when a partition this broker leads has fewer in-sync replicas than replicas.",
    (t, p) => replica(t, p).isr.length < (t.meta.partitions[p]?.replicas.length ?? 0) ? 1 : 0,
  );
  led(
    "rill_partition_under_min_isr",
    "1 when a partition this broker leads has fewer in-sync replicas than min.insync.replicas.",
    (t, p) => replica(t, p).isr.length < t.minInsyncReplicas ? 1 : 0,
  );

  type F = "topic" | "partition" | "follower";
  const followers = (
    name: string,
    help: string,
    value: (leo: number, f: { leo: number; lastCaughtUpMs: number }, now: number) => number,
  ) =>
    metrics.gauge<F>({
      name,
      help,
      labelNames: ["topic", "partition", "follower"],
      collect: (g) => {
        const now = src.now();
        for (const t of src.topics()) {
          t.replicas.forEach((r, p) => {
            if (r?.role !== "leader" || r.closing) return;
            const leo = r.logEndOffset;
            for (const [id, f] of r.followers()) {
              g.set(
                { topic: t.meta.name, partition: String(p), follower: String(id) },
                value(leo, f, now),
              );
            }
          });
        }
      },
    });
  followers(
    "rill_follower_lag_records",
    "Records a follower is behind this leader's log end (as of its last fetch).",
    (leo, f) => Math.max(0, leo - Math.max(0, f.leo)),
  );
  followers(
    "rill_follower_lag_seconds",
    "Time since a follower was last caught up with this leader (0 while it is).",
    (leo, f, now) => f.leo >= leo ? 0 : Math.max(0, now - f.lastCaughtUpMs) / 1000,
  );

  metrics.gauge<"group" | "topic" | "partition">({
    name: "rill_group_lag_records",
    help:
      "Records between a group's committed offset and the high watermark, for partitions this broker leads.",
    labelNames: ["group", "topic", "partition"],
    collect: async (g) => {
      const leaders = new Map<string, TopicState>();
      for (const t of src.topics()) {
        if (t.replicas.some((r) => r?.role === "leader")) leaders.set(t.meta.name, t);
      }
      if (leaders.size === 0 || src.kvReachable?.() === false) return;
      // ["rill", "groups", <group>, "offset", <topic>, <partition>]
      for await (const e of src.kv.list<CommittedOffset>({ prefix: groupsPrefix() })) {
        const [, , group, kind, topic, partition] = e.key;
        if (kind !== "offset" || typeof topic !== "string" || typeof partition !== "number") {
          continue;
        }
        const r = leaders.get(topic)?.replicas[partition];
        if (r?.role !== "leader" || r.closing) continue;
        g.set(
          { group: String(group), topic, partition: String(partition) },
          Math.max(0, r.highWatermark - e.value.offset),
        );
      }
    },
  });
}
