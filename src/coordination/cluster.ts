/**
 * Cluster membership in Deno KV: the cluster id (created once, by whichever broker comes
 * first) and one registration per broker with its advertised URL, role and heartbeat.
 * A broker is alive while its heartbeat is younger than the session timeout.
 *
 * @module
 */
import { kvRetry } from "./kv_retry.ts";
import { brokerKey, brokersPrefix, clusterIdKey, leaderReportKey } from "./kv_keys.ts";
import type { ReportChunk } from "./leader_reports.ts";

/** The role a broker process plays. */
export type BrokerRole = "broker" | "follower";

/** A broker's registration as stored in KV. */
export interface BrokerRegistration {
  /** the broker id */
  id: number;
  /** the URL clients and other brokers reach it at */
  url: string;
  /** "broker" (may lead) or "follower" (observer, never leads) */
  role: BrokerRole;
  /** host:port of its Kafka listener, when it has one */
  kafka?: string;
  /** last heartbeat, ms since the epoch */
  heartbeatMs: number;
  /** when this incarnation started, ms since the epoch */
  startedMs: number;
  /** a uuid per process start: tells a restarted broker from the old one */
  incarnation: string;
  /** set by a graceful shutdown: the broker is gone without waiting for the timeout */
  stopped?: boolean;
  /** the rack (zone) the broker declared with `--rack`; replicas of a partition spread over racks */
  rack?: string;
}

/** A registration with its liveness, as `GET /v1/cluster` reports it. */
export interface BrokerStatus extends BrokerRegistration {
  /** heartbeat younger than the session timeout and not stopped */
  alive: boolean;
}

/**
 * Cluster id and broker registrations.
 *
 * @example
 * ```ts
 * const cluster = new ClusterStore(await Deno.openKv(":memory:"));
 * const clusterId = await cluster.ensureClusterId();
 * ```
 */
export class ClusterStore {
  /** how many report chunks each broker wrote last (to delete the extra ones) */
  readonly #reportChunks = new Map<number, number>();
  /**
   * @param kv the shared KV
   * @param sessionTimeoutMs how long after its last heartbeat a broker counts as dead
   * @param now the clock (for tests)
   */
  constructor(
    readonly kv: Deno.Kv,
    readonly sessionTimeoutMs = 6000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Returns the cluster id, creating it (atomically, once) if this is the first broker.
   *
   * @returns the cluster id
   */
  async ensureClusterId(): Promise<string> {
    const existing = await this.kv.get<string>(clusterIdKey());
    if (existing.value !== null) return existing.value;
    const id = crypto.randomUUID();
    const result = await kvRetry(() =>
      this.kv.atomic().check({ key: clusterIdKey(), versionstamp: null }).set(clusterIdKey(), id)
        .commit()
    );
    if (result.ok) return id;
    const winner = await this.kv.get<string>(clusterIdKey());
    return winner.value!;
  }

  /**
   * Reads the cluster id without creating it.
   *
   * @returns the id, or null before the first broker started
   */
  async clusterId(): Promise<string | null> {
    return (await this.kv.get<string>(clusterIdKey())).value;
  }

  /**
   * Registers (or re-registers) a broker and records a first heartbeat.
   *
   * @param reg id, URL, role and Kafka address
   * @returns the stored registration
   */
  async register(
    reg: Pick<BrokerRegistration, "id" | "url" | "role" | "rack" | "kafka">,
  ): Promise<BrokerRegistration> {
    const now = this.now();
    const value: BrokerRegistration = {
      ...reg,
      ...(reg.rack === undefined ? {} : { rack: reg.rack }),
      heartbeatMs: now,
      startedMs: now,
      incarnation: crypto.randomUUID(),
    };
    await kvRetry(() => this.kv.set(brokerKey(reg.id), value));
    return value;
  }

  /**
   * Records a heartbeat for a registered broker.
   *
   * @param reg the registration returned by {@linkcode register}
   * @returns the updated registration
   */
  async heartbeat(reg: BrokerRegistration, report?: ReportChunk[]): Promise<BrokerRegistration> {
    const value = { ...reg, heartbeatMs: this.now() };
    if (report === undefined) {
      await kvRetry(() => this.kv.set(brokerKey(reg.id), value));
      return value;
    }
    // The offset report rides in the heartbeat's commit (leader_reports.ts): no extra
    // KV operation. Chunks left over from a longer earlier report are deleted.
    const before = this.#reportChunks.get(reg.id) ?? 1;
    await kvRetry(() => {
      const op = this.kv.atomic().set(brokerKey(reg.id), value);
      report.forEach((chunk, i) => op.set(leaderReportKey(reg.id, i), chunk));
      for (let i = report.length; i < before; i++) op.delete(leaderReportKey(reg.id, i));
      return op.commit();
    });
    this.#reportChunks.set(reg.id, report.length);
    return value;
  }

  /**
   * Marks a broker as stopped (a graceful shutdown), unless a newer incarnation of the same
   * id has registered since.
   *
   * @param reg the registration of the stopping broker
   */
  async deregister(reg: BrokerRegistration): Promise<void> {
    await kvRetry(async () => {
      const current = await this.kv.get<BrokerRegistration>(brokerKey(reg.id));
      if (current.value?.incarnation !== reg.incarnation) return;
      await this.kv.atomic().check(current).set(brokerKey(reg.id), {
        ...reg,
        heartbeatMs: this.now(),
        stopped: true,
      }).commit();
    });
  }

  /**
   * Lists every registered broker with its liveness.
   *
   * @returns brokers sorted by id
   */
  async brokers(): Promise<BrokerStatus[]> {
    const out: BrokerStatus[] = [];
    for await (const e of this.kv.list<BrokerRegistration>({ prefix: brokersPrefix() })) {
      out.push(this.status(e.value));
    }
    out.sort((a, b) => a.id - b.id);
    return out;
  }

  /**
   * The liveness of a registration read earlier, judged now.
   *
   * @param reg the registration
   * @returns it with `alive`
   */
  status(reg: BrokerRegistration): BrokerStatus {
    return { ...reg, alive: !reg.stopped && this.now() - reg.heartbeatMs < this.sessionTimeoutMs };
  }

  /**
   * When a registration read earlier stops counting as alive unless it heartbeats again.
   *
   * @param reg the registration
   * @returns ms since the epoch, on this store's clock
   */
  deadline(reg: BrokerRegistration): number {
    return reg.heartbeatMs + this.sessionTimeoutMs;
  }

  /** This store's clock, ms since the epoch. */
  clock(): number {
    return this.now();
  }
}
