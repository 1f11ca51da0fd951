/**
 * The follower's kept-alive HTTP/1.1 connection to its leader (replica_client.ts), against
 * real servers on loopback: bodies with a Content-Length and chunked ones arrive whole, one
 * connection serves many requests, an idle connection the leader closed is replaced, and
 * closing the connection ends a long poll at once.
 */
import assert from "node:assert/strict";
import { LeaderConnection } from "../../src/broker/replica_client.ts";

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

Deno.test("answers of every size and both framings arrive whole over one connection", async () => {
  const ports = new Set<number>();
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req, info) => {
      ports.add(info.remoteAddr.port);
      const u = new URL(req.url);
      const n = Number(u.searchParams.get("n"));
      const body = bytes(n, n);
      const headers = { "rill-high-watermark": String(n), "x-echo": req.headers.get("x-echo")! };
      if (u.pathname === "/chunked") {
        // Several chunks of uneven sizes.
        return new Response(
          new ReadableStream({
            start(c) {
              for (let at = 0; at < n; at += 70_001) c.enqueue(body.slice(at, at + 70_001));
              c.close();
            },
          }),
          { headers },
        );
      }
      return new Response(body, { headers });
    },
  );
  const conn = new LeaderConnection(`http://127.0.0.1:${server.addr.port}`);
  try {
    for (const path of ["/fixed", "/chunked"]) {
      for (const n of [0, 1, 1000, 300_000, 2_000_000, 17]) {
        const res = await conn.get(`${path}?n=${n}`, { "x-echo": `e${n}` });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("rill-high-watermark"), String(n));
        assert.equal(res.headers.get("x-echo"), `e${n}`);
        assert.deepEqual(res.body, bytes(n, n), `${path} ${n}`);
      }
    }
    assert.equal(ports.size, 1, "one kept-alive connection");
  } finally {
    conn.close();
  }
});

Deno.test("an error answer comes back with its status and body", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.json({ error: { code: "FENCED_LEADER_EPOCH", message: "m" } }, { status: 409 }),
  );
  const conn = new LeaderConnection(`http://127.0.0.1:${server.addr.port}`);
  try {
    const res = await conn.get("/x", {});
    assert.equal(res.status, 409);
    assert.equal(JSON.parse(new TextDecoder().decode(res.body)).error.code, "FENCED_LEADER_EPOCH");
  } finally {
    conn.close();
  }
});

Deno.test("a connection the leader closed while idle is replaced on the next request", async () => {
  // A server that answers one request per connection and then closes it without saying so.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  const serving = (async () => {
    for await (const c of listener) {
      accepted++;
      const buf = new Uint8Array(4096);
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await c.read(buf);
        if (n === null) break;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      await c.write(new TextEncoder().encode(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok`));
      c.close();
    }
  })();
  const conn = new LeaderConnection(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
  try {
    for (let i = 0; i < 3; i++) {
      const res = await conn.get("/x", {});
      assert.equal(new TextDecoder().decode(res.body), "ok");
    }
    assert.equal(accepted, 3);
  } finally {
    conn.close();
    listener.close();
    await serving.catch(() => {});
  }
});

Deno.test("closing the connection ends a request in progress", async () => {
  const { promise: never, resolve: release } = Promise.withResolvers<Response>();
  const { promise: arrived, resolve: arrive } = Promise.withResolvers<void>();
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      arrive();
      return never;
    },
  );
  const conn = new LeaderConnection(`http://127.0.0.1:${server.addr.port}`);
  const pending = conn.get("/long-poll", {});
  await arrived;
  conn.close();
  await assert.rejects(pending);
  await assert.rejects(conn.get("/again", {}), /closed/);
  release(new Response("late"));
});
