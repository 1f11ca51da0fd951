/**
 * The floors of the clients benchmark (bench/clients_bench.ts), as their own process so that
 * their CPU is measured apart from the client's:
 *
 * - HTTP: a bare `Deno.serve` that reads each POST body and answers a small JSON object, the
 *   least any HTTP broker on Deno does per request (no routing, no checks, no storage); a
 *   POST with `Prefer: return=minimal` is answered as the broker answers one (204, the
 *   offsets in headers, no body);
 * - WebSocket: `GET /ws` upgrades, and each binary message is echoed back as it came;
 * - the crowd's fan-out floor: `GET /ws?fanout=<partition>&role=producer|consumer` upgrades
 *   a socket of that partition. Each message from a producer is appended to its partition's
 *   in-memory log and acknowledged (8 bytes). A consumer long-polls as the broker's do: it
 *   sends the u32 offset it wants next; once records from there exist it is answered one
 *   frame (u32 count, u32 next offset, then each record as u32 length and bytes) with all of
 *   them, and polls again. The answer for one (partition, offset, end) is built once and sent
 *   to every consumer waiting there. The least a broker long-polling consumers over
 *   WebSocket does per record: no storage, no checks, no JSON.
 *
 * ```sh
 * deno run -A bench/_clients_floor_server.ts    # prints "listening on <port>", serves until killed
 * ```
 *
 * @module
 */
const ANSWER = JSON.stringify({ partition: 0, baseOffset: 0, lastOffset: 0 });

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  // The broker's listen queue (src/cli/broker.ts), so that the crowd's connections queue
  // alike on both.
  tcpBacklog: 4096,
  onListen: ({ port }) => console.log(`listening on ${port}`),
}, async (req) => {
  if (req.headers.get("upgrade") === "websocket" && req.url.includes("fanout=")) {
    return fanoutSocket(req);
  }
  if (req.headers.get("upgrade") === "websocket") {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => socket.send(e.data);
    return response;
  }
  if (req.method === "POST") await req.arrayBuffer();
  if (req.headers.get("prefer") === "return=minimal") {
    const res = new Response(null, { status: 204 });
    res.headers.set("preference-applied", "return=minimal");
    res.headers.set("rill-base-offset", "0");
    res.headers.set("rill-last-offset", "0");
    return res;
  }
  return new Response(ANSWER, { headers: { "content-type": "application/json" } });
});

/** A partition of the fan-out floor: its records in memory and the consumers waiting. */
interface FloorPartition {
  /** offset of records[0] */
  base: number;
  records: Uint8Array[];
  /** waiting consumer sockets by the offset they asked for */
  waiting: Map<number, WebSocket[]>;
}
const fanoutPartitions = new Map<number, FloorPartition>();
const KEEP = 4096;

/** One answer: every record of `p` from `offset` (clamped to what is kept) to its end. */
function answer(p: FloorPartition, offset: number): Uint8Array {
  const from = Math.max(offset, p.base) - p.base;
  let size = 8;
  for (let i = from; i < p.records.length; i++) size += 4 + p.records[i].length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, p.records.length - from);
  view.setUint32(4, p.base + p.records.length);
  let at = 8;
  for (let i = from; i < p.records.length; i++) {
    view.setUint32(at, p.records[i].length);
    out.set(p.records[i], at + 4);
    at += 4 + p.records[i].length;
  }
  return out;
}

function fanoutSocket(req: Request): Response {
  const params = new URL(req.url).searchParams;
  const id = Number(params.get("fanout"));
  let p = fanoutPartitions.get(id);
  if (p === undefined) fanoutPartitions.set(id, p = { base: 0, records: [], waiting: new Map() });
  const partition = p;
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.binaryType = "arraybuffer";
  if (params.get("role") === "consumer") {
    socket.onmessage = (e) => {
      const offset = new DataView(e.data as ArrayBuffer).getUint32(0);
      // "latest": a consumer starting anew asks from the end
      const wanted = offset === 0xffffffff ? partition.base + partition.records.length : offset;
      if (wanted < partition.base + partition.records.length) {
        socket.send(answer(partition, wanted));
        return;
      }
      const list = partition.waiting.get(wanted);
      if (list === undefined) partition.waiting.set(wanted, [socket]);
      else list.push(socket);
    };
    return response;
  }
  const ack = new Uint8Array(8);
  socket.onmessage = (e) => {
    partition.records.push(new Uint8Array(e.data as ArrayBuffer));
    if (partition.records.length > KEEP) {
      partition.records.splice(0, KEEP / 2);
      partition.base += KEEP / 2;
    }
    socket.send(ack);
    const waiting = partition.waiting;
    partition.waiting = new Map();
    for (const [offset, sockets] of waiting) {
      const frame = answer(partition, offset);
      for (const consumer of sockets) {
        if (consumer.readyState === WebSocket.OPEN) consumer.send(frame);
      }
    }
  };
  return response;
}

await server.finished;
