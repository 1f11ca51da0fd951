/**
 * A cluster of real broker processes on loopback sharing one KV file, for replication
 * tests: start, SIGKILL, restart on the same port (so clients keep their bootstrap URLs),
 * describe, produce raw batches, and read a partition's stored batches from a stopped
 * broker's data directory.
 *
 * @module
 */
import { type BrokerProcess, startBroker } from "../_helpers/broker_process.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { PartitionLog } from "../../src/storage/mod.ts";
import type { KvConnectEndpoint } from "../_helpers/kv_connect_server.ts";

/** Short timeouts so failover takes a second or two. */
export const FAST_FLAGS = [
  "--session-timeout-ms",
  "1200",
  "--replica-lag-time-max-ms",
  "1500",
  "--metadata-poll-ms",
  "100",
];

/**
 * Timeouts for clusters over a KV 30 ± 10 ms away (the KV Connect tests): short enough for
 * failover in a few seconds, long enough that a loaded machine (several suites at once)
 * does not make brokers miss heartbeats.
 */
export const KV_FLAGS = [
  "--session-timeout-ms",
  "3000",
  "--replica-lag-time-max-ms",
  "3000",
  "--metadata-poll-ms",
  "200",
];

/** A partition's state as `GET /v1/topics/{t}` describes it. */
export interface PartitionJson {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
  leaderEpoch: number;
  highWatermark: number | null;
  logStartOffset: number | null;
  /** the log end offset of the replica on the broker asked (null: none there) */
  logEndOffset?: number | null;
}

/** Options of {@linkcode Cluster.start}. */
export interface ClusterOptions {
  /**
   * A KV Connect endpoint (tests/_helpers/kv_connect_server.ts) to coordinate through
   * instead of a shared KV file: every broker gets `--kv <its URL>` and its own access token
   * `broker-<id>` (which the endpoint must accept), so usage is counted per broker.
   */
  kv?: KvConnectEndpoint;
}

/** The access token broker `id` uses with a KV Connect endpoint. */
export function brokerToken(id: number): string {
  return `broker-${id}`;
}

/** A running cluster. */
export class Cluster implements AsyncDisposable {
  readonly procs = new Map<number, BrokerProcess>();
  readonly ports = new Map<number, number>();
  readonly dir: string;
  /** the `--kv` of every broker: the shared file, or the endpoint's URL */
  readonly kvPath: string;
  readonly flags: string[];
  readonly kvEndpoint: KvConnectEndpoint | null;

  private constructor(dir: string, flags: string[], opts: ClusterOptions) {
    this.dir = dir;
    this.kvEndpoint = opts.kv ?? null;
    this.kvPath = opts.kv?.url ?? `${dir}/meta.kv`;
    this.flags = flags;
  }

  /**
   * Starts `n` brokers with ids 1..n.
   *
   * @param n how many
   * @param flags extra flags for every broker
   * @param opts a KV Connect endpoint to use instead of a shared file
   * @returns the cluster
   */
  static async start(
    n: number,
    flags: string[] = FAST_FLAGS,
    opts: ClusterOptions = {},
  ): Promise<Cluster> {
    const c = new Cluster(await Deno.makeTempDir({ prefix: "rill-repl-" }), flags, opts);
    for (let id = 1; id <= n; id++) await c.startBroker(id);
    return c;
  }

  /**
   * Starts (or restarts, on its old port) broker `id`.
   *
   * @param id the broker id
   * @param role "broker" or "follower"
   * @param extra more flags
   * @returns the process
   */
  async startBroker(
    id: number,
    role: "broker" | "follower" = "broker",
    extra: string[] = [],
  ): Promise<BrokerProcess> {
    const port = this.ports.get(id);
    let p: BrokerProcess | null = null;
    // The old port may have been taken meanwhile (an outgoing connection of another test):
    // after a few tries, take a new one (clients learn it from the leader hints).
    for (let attempt = 0; p === null; attempt++) {
      const args = [...this.flags, ...extra];
      if (port !== undefined && attempt < 3) args.push("--listen", `127.0.0.1:${port}`);
      try {
        p = await startBroker({
          id,
          role,
          kvPath: this.kvPath,
          dataDir: `${this.dir}/b${id}`,
          extraArgs: args,
          env: this.kvEndpoint ? { DENO_KV_ACCESS_TOKEN: brokerToken(id) } : {},
        });
      } catch (e) {
        if (attempt >= 3 || !/address is in use/.test(String(e))) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.ports.set(id, Number(new URL(p.url).port));
    this.procs.set(id, p);
    return p;
  }

  /**
   * SIGKILLs broker `id` and waits for it to exit.
   *
   * @param id the broker id
   */
  async kill(id: number): Promise<void> {
    const p = this.procs.get(id);
    if (!p) return;
    p.kill("SIGKILL");
    await p.exited;
    this.procs.delete(id);
  }

  /**
   * The URL of broker `id` (also when it is down: it restarts on the same port).
   *
   * @param id the broker id
   * @returns the URL
   */
  url(id: number): string {
    return `http://127.0.0.1:${this.ports.get(id)}`;
  }

  /** URLs of every broker started so far. */
  urls(): string[] {
    return [...this.ports.keys()].map((id) => this.url(id));
  }

  /**
   * Describes a topic through any running broker.
   *
   * @param topic the topic
   * @param via the broker to ask (default: any running one)
   * @returns the partitions
   */
  async describe(topic: string, via?: number): Promise<PartitionJson[]> {
    const ids = via !== undefined ? [via] : [...this.procs.keys()];
    let last: unknown;
    for (const id of ids) {
      try {
        // A stopped (SIGSTOP) broker accepts the connection but never answers.
        const res = await fetch(`${this.url(id)}/v1/topics/${topic}`, {
          signal: AbortSignal.timeout(1000),
        });
        const body = await res.json();
        if (res.ok) return body.partitions;
        last = body;
      } catch (e) {
        last = e;
      }
    }
    throw new Error(`cannot describe ${topic}: ${JSON.stringify(last)}`);
  }

  /**
   * Creates a topic.
   *
   * @param name the topic
   * @param partitions how many partitions
   * @param rf the replication factor
   * @param configs topic configs
   */
  async createTopic(
    name: string,
    partitions: number,
    rf: number,
    configs: Record<string, string> = {},
  ): Promise<PartitionJson[]> {
    const id = [...this.procs.keys()][0];
    const res = await fetch(`${this.url(id)}/v1/topics`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name, partitions, replicationFactor: rf, configs }),
    });
    const body = await res.json();
    if (res.status !== 201) throw new Error(`create failed: ${JSON.stringify(body)}`);
    return body.partitions;
  }

  /**
   * Polls (bounded) until `cond` holds for the topic's partitions: partition state lives
   * in KV and has no event a test can await across processes.
   *
   * @param topic the topic
   * @param cond the condition
   * @param what for the error message
   * @param timeoutMs the bound
   * @returns the partitions satisfying it
   */
  async waitFor(
    topic: string,
    cond: (ps: PartitionJson[]) => boolean,
    what: string,
    timeoutMs = 20_000,
  ): Promise<PartitionJson[]> {
    const deadline = Date.now() + timeoutMs;
    let last: PartitionJson[] = [];
    while (Date.now() < deadline) {
      try {
        last = await this.describe(topic);
        if (cond(last)) return last;
      } catch {
        // a broker going down: ask again
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}; last state ${JSON.stringify(last)}`);
  }

  /**
   * Stops every broker gracefully (SIGTERM).
   */
  async stopAll(): Promise<void> {
    await Promise.all([...this.procs.values()].map((p) => p.stop()));
    this.procs.clear();
  }

  /**
   * Reads the raw batches of a partition from a stopped broker's data directory, from
   * offset 0 up to `upTo`.
   *
   * @param id the broker id
   * @param topic the topic
   * @param partition the partition
   * @param upTo the exclusive end offset (the high watermark)
   * @returns the concatenated batch bytes
   */
  async readLog(id: number, topic: string, partition: number, upTo: number): Promise<Uint8Array> {
    const log = await PartitionLog.open(`${this.dir}/b${id}/${topic}-${partition}`);
    try {
      const parts: Uint8Array[] = [];
      let offset = log.logStartOffset;
      for (let i = 0; i < 100_000 && offset < upTo; i++) {
        const r = await log.read(offset, 1 << 20, { maxOffset: upTo });
        if (r.bytes.length === 0) break;
        parts.push(r.bytes.slice());
        offset = r.nextOffset;
      }
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let pos = 0;
      for (const p of parts) {
        out.set(p, pos);
        pos += p.length;
      }
      return out;
    } finally {
      await log.close();
    }
  }

  /**
   * The last lines each broker wrote to stderr (for failure messages).
   *
   * @param lines how many per broker
   * @returns the text
   */
  logs(lines = 30): string {
    return [...this.procs.entries()].map(([id, p]) =>
      `--- broker ${id} ---\n${p.stderr().trimEnd().split("\n").slice(-lines).join("\n")}`
    ).join("\n");
  }

  /**
   * Runs a test body; a failure carries the brokers' recent log lines.
   *
   * @param fn the body
   */
  async explain(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (e instanceof Error) e.message += `\n${this.logs()}`;
      throw e;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const p of this.procs.values()) {
      try {
        p.kill("SIGCONT");
      } catch {
        // gone
      }
      p.kill("SIGKILL");
      await p.exited;
    }
    this.procs.clear();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/**
 * One record as a raw batch body.
 *
 * @param value the value
 * @returns the batch bytes
 */
export function batchOf(value: string): Uint8Array<ArrayBuffer> {
  return encodeBatch([{ value: new TextEncoder().encode(value) }]) as Uint8Array<ArrayBuffer>;
}
