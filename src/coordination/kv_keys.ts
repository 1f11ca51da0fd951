/**
 * Every Deno KV key Rill uses, in one place, so that no two modules invent overlapping
 * prefixes and a reader can see the whole keyspace at a glance.
 *
 * | key                                   | value                                   | owner      |
 * | ------------------------------------- | --------------------------------------- | ---------- |
 * | `["rill", "cluster", "id"]`           | cluster id (uuid string), set once      | cluster.ts |
 * | `["rill", "brokers", <id>]`           | {@linkcode BrokerRegistration}          | cluster.ts |
 * | `["rill", "topics", <name>]`          | `StoredTopic` (id, counts, configs)     | topics.ts  |
 * | `["rill", "partitions", <name>, <p>]` | `StoredPartition` (leader, replicas, ISR, leader epoch) | topics.ts |
 * | `["rill", "metadata", "version"]`     | `Deno.KvU64`, bumped by every topic change | topics.ts |
 * | `["rill", "controller"]`              | `Lease` (holder broker id, expiry, epoch) | leases.ts |
 * | `["rill", "group_changes"]`           | `true`; its versionstamp moves with every group meta/member write | group_liveness.ts |
 * | `["rill", "offsets", <id>, <chunk>]`  | a broker's report of the offsets and sizes of the partitions it leads, written with its heartbeat | leader_reports.ts |
 * | `["rill", "moves"]`                   | the pending partition moves of a rebalance or decommission | moves.ts |
 *
 * Each partition's state has its own key so that a later leader or ISR change is one small
 * atomic write checked on that partition alone. A topic is created or deleted with its
 * partitions in one atomic operation (at most 1000 mutations, hence the partition limit).
 *
 * Brokers sharing a KV file learn of metadata changes by polling the version key
 * (`kv.watch()` does not see another process's writes to a local file).
 *
 * Consumer group keys live under `["rill", "groups", …]` (see `group_*.ts`).
 *
 * @module
 */

/** The prefix of every Rill key. */
export const ROOT = "rill";

/**
 * Key of the cluster id, written once by the first broker.
 *
 * @returns the key
 * @example
 * ```ts
 * await kv.get<string>(clusterIdKey());
 * ```
 */
export function clusterIdKey(): Deno.KvKey {
  return [ROOT, "cluster", "id"];
}

/**
 * Prefix of every broker registration.
 *
 * @returns the key
 * @example
 * ```ts
 * for await (const e of kv.list({ prefix: brokersPrefix() })) console.log(e.value);
 * ```
 */
export function brokersPrefix(): Deno.KvKey {
  return [ROOT, "brokers"];
}

/**
 * Key of one broker's registration.
 *
 * @param id the broker id
 * @returns the key
 * @example
 * ```ts
 * brokerKey(1); // ["rill", "brokers", 1]
 * ```
 */
export function brokerKey(id: number): Deno.KvKey {
  return [ROOT, "brokers", id];
}

/**
 * Prefix of every topic's metadata.
 *
 * @returns the key
 * @example
 * ```ts
 * for await (const e of kv.list({ prefix: topicsPrefix() })) console.log(e.key[2]);
 * ```
 */
export function topicsPrefix(): Deno.KvKey {
  return [ROOT, "topics"];
}

/**
 * Key of one topic's metadata.
 *
 * @param name the topic name
 * @returns the key
 * @example
 * ```ts
 * topicKey("orders"); // ["rill", "topics", "orders"]
 * ```
 */
export function topicKey(name: string): Deno.KvKey {
  return [ROOT, "topics", name];
}

/**
 * Prefix of one topic's partition states.
 *
 * @param name the topic name
 * @returns the key prefix
 * @example
 * ```ts
 * kv.list({ prefix: partitionsPrefix("orders") });
 * ```
 */
export function partitionsPrefix(name: string): Deno.KvKey {
  return [ROOT, "partitions", name];
}

/**
 * Prefix of every partition state of every topic.
 *
 * @returns the key
 * @example
 * ```ts
 * kv.list({ prefix: allPartitionsPrefix() });
 * ```
 */
export function allPartitionsPrefix(): Deno.KvKey {
  return [ROOT, "partitions"];
}

/**
 * Key of one partition's state.
 *
 * @param name the topic name
 * @param partition the partition index
 * @returns the key
 * @example
 * ```ts
 * partitionKey("orders", 2); // ["rill", "partitions", "orders", 2]
 * ```
 */
export function partitionKey(name: string, partition: number): Deno.KvKey {
  return [ROOT, "partitions", name, partition];
}

/**
 * Key of the metadata version counter (`Deno.KvU64`), bumped by every topic change.
 *
 * @returns the key
 * @example
 * ```ts
 * await kv.atomic().sum(metadataVersionKey(), 1n).commit();
 * ```
 */
export function metadataVersionKey(): Deno.KvKey {
  return [ROOT, "metadata", "version"];
}

/**
 * Prefix reserved for consumer group state (written by `group_*.ts`).
 *
 * @returns the key
 * @example
 * ```ts
 * groupsPrefix(); // ["rill", "groups"]
 * ```
 */
export function groupsPrefix(): Deno.KvKey {
  return [ROOT, "groups"];
}

/**
 * Key of the controller lease (one broker at a time holds it).
 *
 * @returns the key
 * @example
 * ```ts
 * controllerKey(); // ["rill", "controller"]
 * ```
 */
export function controllerKey(): Deno.KvKey {
  return [ROOT, "controller"];
}

/**
 * The group change marker: set by every write of group meta or member records, so that a
 * broker can tell from its versionstamp whether any group changed (group_liveness.ts).
 *
 * @returns the key
 * @example
 * ```ts
 * groupChangesKey(); // ["rill", "group_changes"]
 * ```
 */
export function groupChangesKey(): Deno.KvKey {
  return [ROOT, "group_changes"];
}

/**
 * Prefix of the offset reports of every broker (written with each heartbeat).
 *
 * @returns the key
 * @example
 * ```ts
 * leaderReportsPrefix(); // ["rill", "offsets"]
 * ```
 */
export function leaderReportsPrefix(): Deno.KvKey {
  return [ROOT, "offsets"];
}

/**
 * Key of one chunk of a broker's offset report.
 *
 * @param brokerId the reporting broker
 * @param chunk the chunk index (reports over one KV value's size are split)
 * @returns the key
 * @example
 * ```ts
 * leaderReportKey(1, 0); // ["rill", "offsets", 1, 0]
 * ```
 */
export function leaderReportKey(brokerId: number, chunk: number): Deno.KvKey {
  return [ROOT, "offsets", brokerId, chunk];
}

/**
 * Key of the cluster's pending partition moves (rebalance, decommission).
 *
 * @returns the key
 * @example
 * ```ts
 * movesKey(); // ["rill", "moves"]
 * ```
 */
export function movesKey(): Deno.KvKey {
  return [ROOT, "moves"];
}
