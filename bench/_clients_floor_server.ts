/**
 * The floors of the clients benchmark (bench/clients_bench.ts), as their own process so that
 * their CPU is measured apart from the client's:
 *
 * - HTTP: a bare `Deno.serve` that reads each POST body and answers a small JSON object, the
 *   least any HTTP broker on Deno does per request (no routing, no checks, no storage); a
 *   POST with `Prefer: return=minimal` is answered as the broker answers one (204, the
 *   offsets in headers, no body);
 * - WebSocket: `GET /ws` upgrades, and each binary message is echoed back as it came.
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
await server.finished;
