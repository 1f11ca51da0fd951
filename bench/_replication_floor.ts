/**
 * The floor of the replication throughput target: the same client, batches, partitions and
 * in-flight count as bench/replication_bench.ts, against bench/_replication_floor_node.ts
 * processes that do only what replication cannot avoid (HTTP in, append to a file, a
 * follower's HTTP pull of every byte, a follower's append, acks=all released when both
 * followers fetched past the batch) with no Rill code. Its RF 3 / RF 1 ratio, measured in
 * the same run, is what the machine allows such a pipeline; Rill's ratio is judged against
 * it.
 *
 * @module
 */

/** A running floor cluster. */
export interface FloorCluster extends AsyncDisposable {
  /** the node processes' ids (for CPU accounting) */
  pids: number[];
  /**
   * The produce URL of a partition.
   *
   * @param partition the partition (0, 1 or 2)
   * @param acks "1" or "all"
   */
  produceUrl(partition: number, acks: string): string;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts `nodes` floor nodes (1: one node leads the three partitions; 3: node i leads
 * partition i and follows the other two) and waits until they listen.
 *
 * @param nodes 1 or 3
 * @returns the cluster; dispose of it to kill it and remove its data
 * @example
 * ```ts
 * await using floor = await startFloorCluster(3);
 * await fetch(floor.produceUrl(0, "all"), { method: "POST", body: batch });
 * ```
 */
export async function startFloorCluster(nodes: number): Promise<FloorCluster> {
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-repl-floor-" });
  const ports = Array.from({ length: nodes }, freePort);
  const children: Deno.ChildProcess[] = [];
  const dispose = async () => {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already gone
      }
      await c.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    for (let i = 0; i < nodes; i++) {
      await Deno.mkdir(`${dir}/n${i}`);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./_replication_floor_node.ts", import.meta.url).pathname,
          String(i),
          String(nodes),
          String(ports[i]),
          `${dir}/n${i}`,
          ...ports.map(String),
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      children.push(child);
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!out.includes("ready")) {
        const r = await reader.read();
        if (r.done) throw new Error(`floor node ${i} exited before it was ready`);
        out += r.value;
      }
      reader.releaseLock();
    }
  } catch (e) {
    await dispose();
    throw e;
  }
  return {
    pids: children.map((c) => c.pid),
    produceUrl: (p, acks) =>
      `http://127.0.0.1:${ports[nodes === 1 ? 0 : p]}/?partition=${p}&acks=${acks}`,
    [Symbol.asyncDispose]: dispose,
  };
}
