/**
 * Helpers of the balancing tests (spawned brokers): `rill cluster …` run in-process with
 * its output captured, a bounded wait on the cluster status, and an acks=all fill.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { run as clusterCli } from "../../src/cli/cluster.ts";
import type { ClusterStatus } from "../../src/client/cluster_ops.ts";
import type { Cluster } from "./_cluster.ts";

/** Runs `rill cluster …` in this process; asserts exit 0 and returns what it printed. */
export async function cli(args: string[]): Promise<string> {
  let out = "";
  const io = {
    out: (t: string) => Promise.resolve(void (out += t)),
    err: (t: string) => Promise.resolve(void (out += t)),
    stdin: () => new ReadableStream<Uint8Array>(),
  };
  const code = await clusterCli(args, io);
  assert.equal(code, 0, out);
  return out;
}

/** Polls the cluster status (bounded) until `cond` holds. */
export async function waitStatus(
  cluster: Cluster,
  via: number,
  cond: (s: ClusterStatus) => boolean,
  what: string,
  timeoutMs = 40_000,
): Promise<ClusterStatus> {
  const ops = new Rill({ brokers: [cluster.url(via)], retry: { retries: 1 } }).cluster();
  const deadline = Date.now() + timeoutMs;
  let last: ClusterStatus | null = null;
  while (Date.now() < deadline) {
    try {
      last = await ops.status();
      if (cond(last)) return last;
    } catch {
      // a broker restarting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; last ${JSON.stringify(last)}`);
}

/** Fills every partition with `n` records of `size` bytes (acks=all). */
export async function fill(
  cluster: Cluster,
  topic: string,
  partitions: number,
  n: number,
  size: number,
) {
  const producer = new Rill({ brokers: cluster.urls() }).producer();
  const value = "x".repeat(size);
  for (let p = 0; p < partitions; p++) {
    for (let i = 0; i < n; i += 50) {
      await producer.send({
        topic,
        acks: "all",
        messages: [...Array(Math.min(50, n - i))].map(() => ({ partition: p, value })),
      });
    }
  }
}
