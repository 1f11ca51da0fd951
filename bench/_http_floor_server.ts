/**
 * The floor of the produce benchmarks (bench/client_bench.ts): the least any broker built on
 * Deno's HTTP server can do per produced batch, with no Rill code but the storage engine and
 * the checksum. A bare `Deno.serve` (no Hono, no routing, no auth, no checks beyond the
 * batch CRC-32C) reads each `POST /{partition}` body (as the broker does: `readBody`),
 * checks the CRC of the one batch it holds, appends it to that partition's PartitionLog
 * (default flush policy) and answers its base offset as JSON. Run as its own process, so that it has its own thread as the
 * broker does.
 *
 * The WebSocket append floor of the clients benchmark (bench/clients_bench.ts) is the same
 * work over a bare `Deno.upgradeWebSocket`: `GET /ws` upgrades, and each binary message is a
 * u32 big-endian partition followed by one batch, whose CRC is checked before it is appended
 * to that partition's log; the answer is an 8-byte message, the base offset (f64
 * big-endian). No frame header, no JSON, no auth, no metrics: what no broker that stores a
 * record before it acknowledges it over a WebSocket can beat here.
 *
 * The end-to-end WebSocket floor adds subscribers to it: `GET /ws?sub={partition}` upgrades a
 * connection that is sent every batch appended to that partition (as appended, offsets
 * assigned) the moment its append returns, before the producer's ack: the least a broker does
 * to hand a record produced over a WebSocket to a consumer connected by one, with no frame
 * header, no credit, no session and no read of the log.
 *
 * The end-to-end floor of the clients benchmark adds a long poll to it: `GET /{partition}?
 * offset=N` answers the batches from offset N (`Rill-Next-Offset`: the offset after them) at
 * once when there are some, else when the next append to that partition wakes it (or after
 * 1 s, empty): the least a broker does to hand a record produced over HTTP to a waiting
 * HTTP consumer, with no session, no JSON and no checks.
 *
 * ```sh
 * deno run -A bench/_http_floor_server.ts <dataDir> <partitions>
 * # prints "listening on <port>", serves until killed
 * ```
 *
 * @module
 */
import { PartitionLog } from "../src/storage/mod.ts";
import { crc32c } from "../src/protocol/crc32c.ts";
import { concatBytes } from "../src/protocol/bytes.ts";
import { installNativeCrc32c } from "../src/protocol/native_crc32c.ts";
import { POS, readBatchHeader } from "../src/protocol/record_batch.ts";

const [dir, count] = Deno.args;
await installNativeCrc32c();
const logs = await Promise.all(
  Array.from({ length: Number(count) }, (_, p) => PartitionLog.open(`${dir}/p-${p}`)),
);

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`listening on ${port}`),
}, async (req) => {
  if (req.headers.get("upgrade") === "websocket") return appendOverWebSocket(req);
  const url = new URL(req.url);
  const p = Number(url.pathname.slice(1));
  const log = logs[p];
  if (req.method === "GET") return await longPoll(p, Number(url.searchParams.get("offset")));
  const body = await readBody(req);
  if (!log || crc32c(body.subarray(POS.attributes)) !== readBatchHeader(body).crc) {
    return new Response("bad batch", { status: 400 });
  }
  const { baseOffset } = await log.append(body);
  const waiting = waiters[p];
  waiters[p] = [];
  for (const wake of waiting) wake();
  return Response.json({ baseOffset });
});

/** Per partition, the long polls waiting for its next append. */
const waiters: (() => void)[][] = logs.map(() => []);
/** Per partition, the sockets of `GET /ws?sub={partition}`: each appended batch goes to them. */
const subscribers: Set<WebSocket>[] = logs.map(() => new Set());

/** The batches of a partition from `offset`, at once or after its next append (≤ 1 s). */
async function longPoll(p: number, offset: number): Promise<Response> {
  const log = logs[p];
  if (!log || !(offset >= 0)) return new Response("bad fetch", { status: 400 });
  if (offset >= log.logEndOffset) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      waiters[p].push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  const { bytes, nextOffset } = offset < log.logEndOffset
    ? await log.read(offset, 1 << 20)
    : { bytes: new Uint8Array(0), nextOffset: offset };
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    headers: { "rill-next-offset": String(nextOffset) },
  });
}
await server.finished;

/** The WebSocket append floor and the end-to-end WebSocket floor (see the module comment). */
function appendOverWebSocket(req: Request): Response {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.binaryType = "arraybuffer";
  const sub = new URL(req.url).searchParams.get("sub");
  if (sub !== null) {
    const subs = subscribers[Number(sub)];
    if (subs === undefined) {
      socket.onopen = () => socket.close(1003, "no such partition");
      return response;
    }
    socket.onopen = () => subs.add(socket);
    socket.onclose = () => subs.delete(socket);
    return response;
  }
  socket.onmessage = async (e) => {
    const message = new Uint8Array(e.data as ArrayBuffer);
    const log = logs[new DataView(e.data as ArrayBuffer).getUint32(0)];
    const batch = message.subarray(4);
    if (!log || crc32c(batch.subarray(POS.attributes)) !== readBatchHeader(batch).crc) {
      socket.close(1003, "bad batch");
      return;
    }
    const { baseOffset } = await log.append(batch);
    // The batch as appended (offsets assigned in place) to the partition's subscribers, at
    // once, before the ack.
    for (const s of subscribers[new DataView(e.data as ArrayBuffer).getUint32(0)]) s.send(batch);
    const ack = new Uint8Array(8);
    new DataView(ack.buffer).setFloat64(0, baseOffset);
    socket.send(ack);
  };
  return response;
}

/**
 * The body: a small one (declared ≤ 64 KiB) with `req.bytes()`, as the broker reads it
 * (params.ts `readRequestBytes`), a large one chunk by chunk (on Deno 2.9.6 faster than
 * `req.bytes()` for 1 MiB bodies). `req.body` is not touched before `bytes()`: that would
 * wrap a body Deno.serve already holds in a stream (~35 µs more per 1 KiB request).
 */
async function readBody(req: Request): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > 0 && declared <= 64 * 1024) return await req.bytes();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of req.body!) {
    chunks.push(chunk);
    total += chunk.length;
  }
  return concatBytes(chunks, total);
}
