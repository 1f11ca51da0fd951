/**
 * The broker's data directory, laid out as Kafka lays out a log dir:
 *
 * ```
 * <data>/.lock                        held (flock) by the broker process using the directory
 * <data>/meta.properties              which cluster and broker this directory belongs to
 * <data>/meta.kv                      the default local KV file (when --kv is not given)
 * <data>/<topic>-<partition>/         one partition log (segments, indexes, checkpoints)
 * <data>/<topic>-<partition>/partition.metadata   the topic id the log belongs to
 * ```
 *
 * `meta.properties` (text, `key=value` lines: `version=1`, `cluster.id=<uuid>`,
 * `broker.id=<n>`) is written on the first start. A later start with a KV that holds
 * another cluster id, or with another broker id, is refused: pointing a broker at the wrong
 * KV must not make it delete data it does not recognise.
 *
 * `partition.metadata` (`version: 0` and `topic_id: <uuid>` lines, as Kafka's) tells a log
 * of a deleted-and-re-created topic apart from the current one, so stale data is removed
 * rather than served.
 *
 * @module
 */

const META_PROPERTIES = "meta.properties";
const LOCK_FILE = ".lock";
/** How long to wait for the data directory lock before deciding another broker holds it. */
const LOCK_WAIT_MS = 500;
const PARTITION_METADATA = "partition.metadata";

/**
 * Joins path segments with "/".
 *
 * @param dir a directory
 * @param name a name inside it
 * @returns the joined path
 * @example
 * ```ts
 * join("/data", "orders-0"); // "/data/orders-0"
 * ```
 */
export function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * The directory of a partition's log.
 *
 * @param dataDir the broker's data directory
 * @param topic the topic
 * @param partition the partition
 * @returns `<data>/<topic>-<partition>`
 * @example
 * ```ts
 * partitionDir("/data", "orders", 2); // "/data/orders-2"
 * ```
 */
export function partitionDir(dataDir: string, topic: string, partition: number): string {
  return join(dataDir, `${topic}-${partition}`);
}

/**
 * Takes the exclusive lock of a data directory, as Kafka's `.lock`: two broker processes
 * on one directory would corrupt each other's logs. The operating system releases the
 * lock when the process dies, so a crash never leaves the directory locked.
 *
 * The runtime offers only a blocking lock call; when it does not succeed within
 * {@linkcode LOCK_WAIT_MS}, the directory is taken to be in use and the pending call is
 * left behind (the refused broker process exits).
 *
 * @param dataDir the data directory (created if missing)
 * @returns the lock file; closing it releases the lock
 * @throws {Error} when another broker holds the directory
 * @example
 * ```ts
 * const lock = await lockDataDir("./data");
 * // … run the broker …
 * lock.close();
 * ```
 */
export async function lockDataDir(dataDir: string): Promise<Deno.FsFile> {
  await Deno.mkdir(dataDir, { recursive: true });
  const file = await Deno.open(join(dataDir, LOCK_FILE), { create: true, write: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const busy = new Promise<"busy">((resolve) =>
    timer = setTimeout(() => resolve("busy"), LOCK_WAIT_MS)
  );
  const outcome = await Promise.race([file.lock(true).then(() => "locked" as const), busy]);
  clearTimeout(timer);
  if (outcome === "busy") {
    throw new Error(
      `The data directory ${dataDir} is in use by another broker process; give each broker its own --data`,
    );
  }
  return file;
}

/**
 * Checks `meta.properties` against the cluster and broker ids, writing it on first start.
 *
 * @param dataDir the data directory (created if missing)
 * @param clusterId the cluster id held in KV
 * @param brokerId this broker's id
 * @throws {Error} when the directory belongs to another cluster or broker
 * @example
 * ```ts
 * await checkMetaProperties("./data", clusterId, 1);
 * ```
 */
export async function checkMetaProperties(
  dataDir: string,
  clusterId: string,
  brokerId: number,
): Promise<void> {
  await Deno.mkdir(dataDir, { recursive: true });
  const path = join(dataDir, META_PROPERTIES);
  let text: string | null = null;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (text === null) {
    const tmp = path + ".tmp";
    await Deno.writeTextFile(tmp, `version=1\ncluster.id=${clusterId}\nbroker.id=${brokerId}\n`);
    await Deno.rename(tmp, path);
    return;
  }
  const props = parseProperties(text);
  if (props["cluster.id"] !== undefined && props["cluster.id"] !== clusterId) {
    throw new Error(
      `The data directory belongs to cluster ${
        props["cluster.id"]
      }, but the KV store holds cluster ${clusterId}; pass the --kv this directory was used with`,
    );
  }
  if (props["broker.id"] !== undefined && props["broker.id"] !== String(brokerId)) {
    throw new Error(
      `The data directory belongs to broker ${
        props["broker.id"]
      }, not broker ${brokerId}; pass --id ${props["broker.id"]} or another --data`,
    );
  }
}

function parseProperties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([^#=:\s][^=:]*?)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/**
 * Reads the topic id a partition directory belongs to.
 *
 * @param dir the partition directory
 * @returns the topic id, or null when the directory or the file is missing
 * @example
 * ```ts
 * await readPartitionTopicId("./data/orders-0"); // "5f0c…" or null
 * ```
 */
export async function readPartitionTopicId(dir: string): Promise<string | null> {
  try {
    const props = parseProperties(await Deno.readTextFile(join(dir, PARTITION_METADATA)));
    return props["topic_id"] ?? null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Records the topic id a partition directory belongs to.
 *
 * @param dir the partition directory (must exist)
 * @param topicId the topic id
 * @example
 * ```ts
 * await writePartitionTopicId("./data/orders-0", meta.topicId);
 * ```
 */
export async function writePartitionTopicId(dir: string, topicId: string): Promise<void> {
  const path = join(dir, PARTITION_METADATA);
  await Deno.writeTextFile(path + ".tmp", `version: 0\ntopic_id: ${topicId}\n`);
  await Deno.rename(path + ".tmp", path);
}

/**
 * Lists the partition directories present in the data directory.
 *
 * @param dataDir the data directory
 * @returns `{topic, partition, dir}` for every `<topic>-<n>` directory holding a partition
 *   log (a `partition.metadata` or a segment file)
 * @example
 * ```ts
 * for (const d of await listPartitionDirs("./data")) console.log(d.topic, d.partition);
 * ```
 */
export async function listPartitionDirs(
  dataDir: string,
): Promise<{ topic: string; partition: number; dir: string }[]> {
  const out: { topic: string; partition: number; dir: string }[] = [];
  for await (const entry of Deno.readDir(dataDir)) {
    if (!entry.isDirectory) continue;
    const m = /^(.+)-(\d{1,9})$/.exec(entry.name);
    if (!m) continue;
    const dir = join(dataDir, entry.name);
    // Only directories that hold a partition log count: never touch anything else.
    if (!(await isPartitionLogDir(dir))) continue;
    out.push({ topic: m[1], partition: Number(m[2]), dir });
  }
  return out;
}

async function isPartitionLogDir(dir: string): Promise<boolean> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && (e.name === PARTITION_METADATA || /^\d{20}\.log$/.test(e.name))) return true;
  }
  return false;
}

/**
 * Removes a directory tree, ignoring one that is already gone.
 *
 * @param dir the directory
 * @example
 * ```ts
 * await removeDir("./data/orders-0");
 * ```
 */
export async function removeDir(dir: string): Promise<void> {
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (e) {
    // Another path (a concurrent delete) may have removed it first.
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Releases the lock of a data directory: unlocks, then closes (closing alone could leave the
 * `flock` held for a moment by a child process being spawned, which shares the descriptor
 * until it execs; see storage/log_state_loader.ts `unlockDir`).
 *
 * @param lock what {@linkcode lockDataDir} returned
 * @example
 * ```ts
 * unlockDataDir(await lockDataDir("./data"));
 * ```
 */
export function unlockDataDir(lock: Deno.FsFile): void {
  try {
    lock.unlockSync();
  } finally {
    lock.close();
  }
}
