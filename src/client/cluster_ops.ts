/**
 * The client side of the cluster's balancing operations (`/v1/cluster/…`): preferred
 * leader election, rebalance plans (dry run or executed), decommissioning a broker and
 * taking that back, cancelling the moves under way, and the balance and move status. `rill cluster …` uses it. Get one from `rill.cluster()`.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { Transport } from "./transport.ts";

export type {
  BrokerLoad,
  CancelMovesResult,
  ClusterStatus,
  ElectLeadersResult,
  MovePlanResult,
  PartitionMove,
} from "../protocol/cluster_admin_types.ts";
import type {
  CancelMovesResult,
  ClusterStatus,
  ElectLeadersResult,
  MovePlanResult,
} from "../protocol/cluster_admin_types.ts";

function malformed(what: string): RillError {
  return new RillError("UNKNOWN_SERVER_ERROR", `The broker's answer to ${what} is malformed`);
}

/**
 * Balancing operations.
 *
 * @example
 * ```ts
 * const plan = await rill.cluster().rebalance({ execute: false });
 * console.log(plan.moves.length, "moves");
 * ```
 */
export class ClusterOperations {
  readonly #t: Transport;

  /** @param transport the client's transport */
  constructor(transport: Transport) {
    this.#t = transport;
  }

  /**
   * Moves leadership back to preferred leaders wherever they are alive and in sync.
   *
   * @param topic only this topic (default: all)
   * @returns what moved and what could not
   */
  async electLeaders(topic?: string): Promise<ElectLeadersResult> {
    const body = await this.#t.json<ElectLeadersResult>("POST", "/v1/cluster/elect-leaders", {
      json: topic === undefined ? {} : { topic },
    });
    if (!body || !Array.isArray(body.elected)) throw malformed("POST /v1/cluster/elect-leaders");
    return body;
  }

  /**
   * Plans a rebalance; with `execute`, the controller carries it out.
   *
   * @param options `execute` (default false: a dry run)
   * @returns the plan
   */
  async rebalance(options: { execute?: boolean } = {}): Promise<MovePlanResult> {
    const body = await this.#t.json<MovePlanResult>("POST", "/v1/cluster/rebalance", {
      json: { execute: options.execute ?? false },
    });
    if (!body || !Array.isArray(body.moves)) throw malformed("POST /v1/cluster/rebalance");
    return body;
  }

  /**
   * Decommissions a broker: every replica moves off it.
   *
   * @param brokerId the broker
   * @param options `execute` (default true)
   * @returns the plan
   */
  async decommission(
    brokerId: number,
    options: { execute?: boolean } = {},
  ): Promise<MovePlanResult> {
    const body = await this.#t.json<MovePlanResult>("POST", "/v1/cluster/decommission", {
      json: { brokerId, execute: options.execute ?? true },
    });
    if (!body || !Array.isArray(body.moves)) throw malformed("POST /v1/cluster/decommission");
    return body;
  }

  /**
   * Cancels every move: planned moves are dropped and moves under way roll back to the
   * partitions' previous replicas (the partial new replicas are deleted). Brokers being
   * decommissioned stay so.
   *
   * @returns what was dropped and rolled back
   */
  async cancelMoves(): Promise<CancelMovesResult> {
    return checkCancel(
      await this.#t.json<CancelMovesResult>("POST", "/v1/cluster/cancel-moves", { json: {} }),
      "POST /v1/cluster/cancel-moves",
    );
  }

  /**
   * Takes a decommission back: the broker may hold replicas again, and the moves off it
   * (planned or under way) are cancelled.
   *
   * @param brokerId the broker
   * @returns what was dropped and rolled back
   */
  async recommission(brokerId: number): Promise<CancelMovesResult> {
    return checkCancel(
      await this.#t.json<CancelMovesResult>("POST", "/v1/cluster/recommission", {
        json: { brokerId },
      }),
      "POST /v1/cluster/recommission",
    );
  }

  /**
   * The cluster's balance and move progress.
   *
   * @returns the status
   */
  async status(): Promise<ClusterStatus> {
    const body = await this.#t.json<ClusterStatus>("GET", "/v1/cluster/status");
    if (!body || !Array.isArray(body.brokers)) throw malformed("GET /v1/cluster/status");
    return body;
  }
}

function checkCancel(body: CancelMovesResult | null, what: string): CancelMovesResult {
  if (!body || !Array.isArray(body.rolledBack) || !Array.isArray(body.dropped)) {
    throw malformed(what);
  }
  return body;
}
