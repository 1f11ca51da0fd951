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
import { labelText, type Metrics } from "../observability/metrics.ts";
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

  // Per partition led and per follower: tables (metrics.ts), one label text per row shared
  // by every family, no per-series objects.
  const P = ["topic", "partition"];
  metrics.table({
    families: [
      {
        name: "rill_partition_log_start_offset",
        help: "First offset still in the log of a partition this broker leads.",
      },
      {
        name: "rill_partition_log_end_offset",
        help: "Offset after the last record appended to a partition this broker leads.",
      },
      {
        name: "rill_partition_high_watermark",
        help:
          "High watermark (offset after the last committed record) of a partition this broker leads.",
      },
      {
        name: "rill_partition_size_bytes",
        help: "Bytes on disk of the segments of a partition this broker leads.",
      },
      { name: "rill_partition_segments", help: "Segments of a partition this broker leads." },
      {
        name: "rill_partition_log_failed",
        help:
          "1 while the log of a partition this broker leads failed on an I/O error (ENOSPC) and takes no writes; it reopens through recovery once space is back.",
      },
      {
        name: "rill_partition_replicas",
        help: "Assigned replicas of a partition this broker leads.",
      },
      { name: "rill_partition_isr", help: "In-sync replicas of a partition this broker leads." },
      {
        name: "rill_partition_under_replicated",
        help: "1 when a partition this broker leads has fewer in-sync replicas than replicas.",
      },
      {
        name: "rill_partition_under_min_isr",
        help:
          "1 when a partition this broker leads has fewer in-sync replicas than min.insync.replicas.",
      },
    ],
    collect: (row) => {
      const v = new Array<number>(10);
      for (const t of src.topics()) {
        const replicas = t.replicas;
        for (let p = 0; p < replicas.length; p++) {
          const r = replicas[p];
          if (r?.role !== "leader" || r.closing) continue;
          const assigned = t.meta.partitions[p]?.replicas.length ?? 0;
          const isr = r.isr.length;
          v[0] = r.logStartOffset;
          v[1] = r.logEndOffset;
          v[2] = r.highWatermark;
          v[3] = r.log.size;
          v[4] = r.log.segmentCount;
          v[5] = r.log.failure === null ? 0 : 1;
          v[6] = assigned;
          v[7] = isr;
          v[8] = isr < assigned ? 1 : 0;
          v[9] = isr < t.minInsyncReplicas ? 1 : 0;
          row(labelText(P, [t.meta.name, String(p)]), v);
        }
      }
    },
  });

  const F = ["topic", "partition", "follower"];
  metrics.table({
    families: [
      {
        name: "rill_follower_lag_records",
        help: "Records a follower is behind this leader's log end (as of its last fetch).",
      },
      {
        name: "rill_follower_lag_seconds",
        help: "Time since a follower was last caught up with this leader (0 while it is).",
      },
    ],
    collect: (row) => {
      const now = src.now();
      const v = [0, 0];
      for (const t of src.topics()) {
        t.replicas.forEach((r, p) => {
          if (r?.role !== "leader" || r.closing) return;
          const leo = r.logEndOffset;
          for (const [id, f] of r.followers()) {
            v[0] = Math.max(0, leo - Math.max(0, f.leo));
            v[1] = f.leo >= leo ? 0 : Math.max(0, now - f.lastCaughtUpMs) / 1000;
            row(labelText(F, [t.meta.name, String(p), String(id)]), v);
          }
        });
      }
    },
  });

  const G = ["group", "topic", "partition"];
  metrics.table({
    families: [{
      name: "rill_group_lag_records",
      help:
        "Records between a group's committed offset and the high watermark, for partitions this broker leads.",
    }],
    collect: async (row) => {
      const leaders = new Map<string, TopicState>();
      for (const t of src.topics()) {
        if (t.replicas.some((r) => r?.role === "leader")) leaders.set(t.meta.name, t);
      }
      if (leaders.size === 0 || src.kvReachable?.() === false) return;
      const v = [0];
      // ["rill", "groups", <group>, "offset", <topic>, <partition>]
      for await (const e of src.kv.list<CommittedOffset>({ prefix: groupsPrefix() })) {
        const [, , group, kind, topic, partition] = e.key;
        if (kind !== "offset" || typeof topic !== "string" || typeof partition !== "number") {
          continue;
        }
        const r = leaders.get(topic)?.replicas[partition];
        if (r?.role !== "leader" || r.closing) continue;
        v[0] = Math.max(0, r.highWatermark - e.value.offset);
        row(labelText(G, [String(group), topic, String(partition)]), v);
      }
    },
  });
}
