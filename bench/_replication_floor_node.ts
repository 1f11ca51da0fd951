/**
 * One node of the replication floor (bench/_replication_floor.ts): the pipeline that the
 * replication benchmark measures, with no Rill code in it. Node `me` of `n` leads partition
 * `me` (all three partitions when `n` is 1) and pulls the others from their leaders, as a
 * Rill follower does, over one kept-alive HTTP/1.1 connection per partition
 * (replica_client.ts, the only Rill module used: it is what a follower reads answers with).
 *
 * - `POST /?partition=P&acks=1|all`: the body is appended to the partition's file (one
 *   write call on the Deno thread pool, as a log segment does); with `acks=all` and `n` > 1
 *   the answer waits until every follower has fetched past it. No checks, no offsets.
 * - `GET /?partition=P&pos=B&id=F`: a follower's fetch from byte `B`: the leader notes
 *   the position (which may release `acks=all` waiters), long-polls up to 500 ms when
 *   there is nothing new, and answers the bytes from `B` to the end of the file, read
 *   from the page cache into a new buffer (as a log segment's read does).
 *
 * ```sh
 * deno run -A bench/_replication_floor_node.ts <me> <n> <port> <dir> <port of node 0> …
 * # prints "ready", serves until killed
 * ```
 *
 * @module
 */
import { LeaderConnection } from "../src/broker/replica_client.ts";

const PARTITIONS = 3;
const MAX_FETCH_BYTES = 8 * 1024 * 1024;

const [me, n, port] = Deno.args.slice(0, 3).map(Number);
const dir = Deno.args[3];
const peerPorts = Deno.args.slice(4).map(Number);

interface Partition {
  append: Deno.FsFile;
  read: Deno.FsFile;
  end: number;
  followers: Map<number, number>;
  fetchWaiters: (() => void)[];
  commits: { end: number; resolve: () => void }[];
}

const partitions: Partition[] = Array.from({ length: PARTITIONS }, (_, p) => {
  const path = `${dir}/p${p}.log`;
  const append = Deno.openSync(path, { create: true, append: true });
  return {
    append,
    read: Deno.openSync(path),
    end: 0,
    followers: new Map(),
    fetchWaiters: [],
    commits: [],
  };
});

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let n = 0;
  while (n < bytes.length) n += await file.write(bytes.subarray(n));
}

/** Releases the `acks=all` waiters below the smallest follower position. */
function advance(part: Partition): void {
  let committed = part.end;
  for (let id = 0; id < n; id++) {
    if (id !== me) committed = Math.min(committed, part.followers.get(id) ?? 0);
  }
  part.commits = part.commits.filter((c) => {
    if (c.end > committed) return true;
    c.resolve();
    return false;
  });
}

function readFrom(part: Partition, pos: number): Uint8Array {
  const buf = new Uint8Array(Math.max(0, Math.min(part.end - pos, MAX_FETCH_BYTES)));
  part.read.seekSync(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < buf.length) {
    const r = part.read.readSync(buf.subarray(got));
    if (r === null || r === 0) break;
    got += r;
  }
  return buf.subarray(0, got);
}

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => console.log("ready") }, async (req) => {
  const q = new URL(req.url).searchParams;
  const part = partitions[Number(q.get("partition"))];
  if (req.method === "POST") {
    const body = new Uint8Array(await req.arrayBuffer());
    await writeAll(part.append, body);
    part.end += body.length;
    const end = part.end;
    for (const wake of part.fetchWaiters.splice(0)) wake();
    if (q.get("acks") === "all" && n > 1) {
      await new Promise<void>((resolve) => {
        part.commits.push({ end, resolve });
        advance(part);
      });
    }
    return Response.json({ end });
  }
  const pos = Number(q.get("pos"));
  part.followers.set(Number(q.get("id")), pos);
  advance(part);
  if (pos >= part.end) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 500);
      part.fetchWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return new Response(readFrom(part, pos) as Uint8Array<ArrayBuffer>);
});

// Follow the partitions the other nodes lead.
for (let p = 0; p < PARTITIONS && n > 1; p++) {
  if (p === me) continue;
  const part = partitions[p];
  const conn = new LeaderConnection(`http://127.0.0.1:${peerPorts[p]}`);
  (async () => {
    for (;;) {
      try {
        const res = await conn.get(`/?partition=${p}&pos=${part.end}&id=${me}`, {});
        await writeAll(part.append, res.body);
        part.end += res.body.length;
      } catch {
        // the leader is not up yet
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })();
}
