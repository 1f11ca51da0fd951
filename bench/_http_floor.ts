/**
 * The floor of the produce benchmarks: the rate at which a bare Deno HTTP pipeline appends
 * the same pre-encoded 1 MiB batches that the storage-only baseline appends, with no Rill
 * code on either side but the storage engine and the CRC-32C check. The server is
 * bench/_http_floor_server.ts, a process of its own; the client is bare `fetch`, with as
 * many requests in flight as the client producer phase keeps. No client that encodes its
 * records, and no broker that routes, authorizes and checks them, can beat it on the same
 * machine: it is the ceiling of what the Rill producer can reach here.
 *
 * @module
 */

/** A running floor server. */
export interface FloorServer extends AsyncDisposable {
  /** its URL, `POST {url}/{partition}` appends a body of batches */
  url: string;
  /** its process id (for its CPU time) */
  pid: number;
  /**
   * Appends `batch` for `seconds`, `inFlight` requests at a time, spread over the
   * partitions in turn.
   *
   * @returns records per second
   */
  produce(batch: Uint8Array, records: number, seconds: number, inFlight: number): Promise<number>;
}

/**
 * Starts bench/_http_floor_server.ts in a temp dir and waits for it to listen.
 *
 * @param partitions how many partition logs it keeps
 * @returns the server; dispose of it to kill it and remove its data
 * @example
 * ```ts
 * await using floor = await startFloorServer(4);
 * const rate = await floor.produce(batch, 1000, 3, 16);
 * ```
 */
export async function startFloorServer(partitions: number): Promise<FloorServer> {
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-floor-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_http_floor_server.ts", import.meta.url).pathname,
      dir,
      String(partitions),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let port: string | undefined;
  while (port === undefined) {
    const { value, done } = await lines.read();
    if (done) throw new Error("the floor server exited before it listened");
    out += value;
    port = /listening on (\d+)/.exec(out)?.[1];
  }
  void (async () => {
    while (!(await lines.read()).done) { /* drain */ }
  })();
  const base = `http://127.0.0.1:${port}`;
  let next = 0;
  return {
    url: base,
    pid: child.pid,
    async produce(batch, records, seconds, inFlight) {
      let appended = 0;
      const pending = new Set<Promise<void>>();
      const t0 = performance.now();
      const end = t0 + seconds * 1000;
      while (performance.now() < end) {
        const p: Promise<void> = fetch(`${base}/${next++ % partitions}`, {
          method: "POST",
          body: batch as Uint8Array<ArrayBuffer>,
        }).then(async (res) => {
          if (!res.ok) throw new Error(`floor server: ${res.status} ${await res.text()}`);
          await res.bytes();
          appended += records;
          pending.delete(p);
        });
        pending.add(p);
        if (pending.size >= inFlight) await Promise.race(pending);
      }
      await Promise.all(pending);
      return appended / ((performance.now() - t0) / 1000);
    },
    async [Symbol.asyncDispose]() {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
