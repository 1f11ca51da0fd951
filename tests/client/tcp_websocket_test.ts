/**
 * The client's WebSocket over Deno's TCP (src/client/tcp_websocket.ts): against Deno's own
 * WebSocket server, and against a scripted server speaking raw RFC 6455 bytes (fragments,
 * ping, text, a close with a reason, refused handshakes).
 */
import assert from "node:assert/strict";
import {
  acceptOf as clientAcceptOf,
  TcpWebSocket,
  TcpWebSocketRefused,
} from "../../src/client/tcp_websocket.ts";

/** Collects a socket's messages and its close. */
function events() {
  const messages: Uint8Array[] = [];
  let onMessage = () => {};
  let closed!: (c: { code: number; reason: string }) => void;
  const close = new Promise<{ code: number; reason: string }>((r) => closed = r);
  return {
    messages,
    close,
    /** resolves once `n` messages are in */
    async count(n: number) {
      while (messages.length < n) await new Promise<void>((r) => onMessage = r);
    },
    handlers: {
      onMessage: (data: Uint8Array, owned: boolean) => {
        // A view is valid only during the call.
        messages.push(owned ? data : data.slice());
        onMessage();
      },
      onClose: (code: number, reason: string) => closed({ code, reason }),
    },
  };
}

Deno.test("tcp websocket: messages of every length class echo back whole, masked as a client must; close is clean", async () => {
  const received: Uint8Array[] = [];
  let serverClosed!: (code: number) => void;
  const serverClose = new Promise<number>((r) => serverClosed = r);
  let protocol = "";
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    protocol = req.headers.get("sec-websocket-protocol") ?? "";
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol: "rill.v1" });
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      received.push(new Uint8Array(e.data as ArrayBuffer));
      socket.send(e.data as ArrayBuffer);
    };
    socket.onclose = (e) => serverClosed(e.code);
    return response;
  });
  const ev = events();
  const ws = await TcpWebSocket.open(
    `ws://127.0.0.1:${server.addr.port}/v1/ws`,
    ["rill.v1"],
    { authorization: "Bearer k.s" },
    ev.handlers,
  );
  assert.equal(protocol, "rill.v1");
  // 7-bit, 16-bit and 64-bit lengths; odd sizes so the masking's tail is covered.
  const sizes = [0, 1, 125, 126, 1023, 1301, 3000, 4096, 4097, 3001, 8200, 65535, 65536, 200_003];
  const sent = sizes.map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff));
  for (const m of sent) ws.send(m);
  await ev.count(sent.length);
  assert.deepEqual(received, sent);
  assert.deepEqual(ev.messages, sent);
  // Built in place (the reused buffer while it is free, else fresh ones), several at once, and
  // one shorter than the size asked, across a length class.
  const built = [...sent, new Uint8Array([7, 7, 7])];
  for (const m of sent) {
    ws.sendBuilt((alloc) => {
      const out = alloc(m.length);
      out.set(m);
      return out;
    });
  }
  ws.sendBuilt((alloc) => alloc(200).subarray(0, 3).fill(7));
  await ev.count(sent.length + built.length);
  assert.deepEqual(received.slice(sent.length), built);
  assert.deepEqual(ev.messages.slice(sent.length), built);
  // One at a time: each reuses the buffer the one before was written from.
  for (const m of sent.slice(0, 5)) {
    ws.sendBuilt((alloc) => {
      const out = alloc(m.length);
      out.set(m);
      return out;
    });
    await ev.count(ev.messages.length + 1);
    assert.deepEqual(ev.messages.at(-1), m);
  }
  ws.close(1000);
  assert.deepEqual(await ev.close, { code: 1000, reason: "" });
  assert.equal(await serverClose, 1000);
});

/** A server that answers the handshake, then runs `script` on the raw connection. */
function scripted(
  answer: (key: string) => string | Promise<string>,
  script: (conn: Deno.Conn) => Promise<void>,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    try {
      const buf = new Uint8Array(4096);
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      const key = /sec-websocket-key: (\S+)/i.exec(head)![1];
      await conn.write(new TextEncoder().encode(await answer(key)));
      await script(conn);
    } finally {
      try {
        conn.close();
      } catch { /* closed by the client */ }
    }
  })();
  return {
    url: `ws://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/v1/ws`,
    async [Symbol.asyncDispose]() {
      await done;
      listener.close();
    },
  };
}

async function acceptOf(key: string): Promise<string> {
  const d = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
  );
  return btoa(String.fromCharCode(...new Uint8Array(d)));
}

/** Reads one client frame (masked) off a raw connection: opcode and unmasked payload. */
async function readClientFrame(conn: Deno.Conn): Promise<{ opcode: number; payload: Uint8Array }> {
  const head = new Uint8Array(2);
  await readFull(conn, head);
  assert.ok((head[1] & 0x80) !== 0, "client frames are masked");
  const len = head[1] & 0x7f;
  assert.ok(len < 126);
  const rest = new Uint8Array(4 + len);
  await readFull(conn, rest);
  const payload = rest.subarray(4).map((b, i) => b ^ rest[i & 3]);
  return { opcode: head[0] & 0x0f, payload };
}

async function readFull(conn: Deno.Conn, into: Uint8Array): Promise<void> {
  let n = 0;
  while (n < into.length) {
    const r = await conn.read(into.subarray(n));
    if (r === null) throw new Error("closed");
    n += r;
  }
}

const frame = (b0: number, payload: number[] | Uint8Array) =>
  new Uint8Array([b0, payload.length, ...payload]);

Deno.test("tcp websocket: fragments are joined, text ignored, ping answered with pong, the server's close reported with its code and reason", async () => {
  const ev = events();
  let pong: { opcode: number; payload: Uint8Array } | undefined;
  let closeEcho: { opcode: number; payload: Uint8Array } | undefined;
  {
    await using server = await scripted(
      async (key) =>
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Accept: ${await acceptOf(key)}\r\nSec-WebSocket-Protocol: rill.v1\r\n\r\n`,
      async (conn) => {
        await conn.write(
          new Uint8Array([
            ...frame(0x02, [1, 2]), // binary, not final
            ...frame(0x89, [9, 9, 9]), // a ping between fragments
            ...frame(0x00, [3]), // continuation
            ...frame(0x80, [4, 5]), // final continuation
            ...frame(0x81, [0x68, 0x69]), // text: ignored
            ...frame(0x82, [6]), // a whole binary message
          ]),
        );
        pong = await readClientFrame(conn);
        const reason = new TextEncoder().encode("bye");
        await conn.write(frame(0x88, [0x0f, 0xa1, ...reason])); // close 4001 "bye"
        closeEcho = await readClientFrame(conn);
      },
    );
    const ws = await TcpWebSocket.open(server.url, ["rill.v1"], {}, ev.handlers);
    assert.deepEqual(await ev.close, { code: 4001, reason: "bye" });
    ws.send(new Uint8Array([1])); // after the close: dropped, no error
  }
  assert.deepEqual(ev.messages, [new Uint8Array([1, 2, 3, 4, 5]), new Uint8Array([6])]);
  assert.equal(pong?.opcode, 0xa);
  assert.deepEqual(pong?.payload, new Uint8Array([9, 9, 9]));
  assert.equal(closeEcho?.opcode, 0x8);
  assert.deepEqual(closeEcho?.payload, new Uint8Array([0x0f, 0xa1]));
});

Deno.test("tcp websocket: a refused or wrong handshake rejects with TcpWebSocketRefused", async () => {
  const cases: [string, (key: string) => string | Promise<string>][] = [
    ["401", () => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"],
    [
      "wrong accept",
      () =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nSec-WebSocket-Protocol: rill.v1\r\n\r\n",
    ],
    [
      "no subprotocol",
      async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await acceptOf(key)}\r\n\r\n`,
    ],
  ];
  for (const [name, answer] of cases) {
    await using server = await scripted(answer, async () => {});
    await assert.rejects(
      TcpWebSocket.open(server.url, ["rill.v1"], {}, events().handlers),
      (e: unknown) => e instanceof TcpWebSocketRefused,
      name,
    );
  }
  // Nothing listening.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await assert.rejects(
    TcpWebSocket.open(`ws://127.0.0.1:${port}/`, [], {}, events().handlers),
    TcpWebSocketRefused,
  );
});

Deno.test("the Sec-WebSocket-Accept expected is RFC 6455's for its example key, and crypto.subtle's for random keys", async () => {
  assert.equal(await clientAcceptOf("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  for (let i = 0; i < 20; i++) {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    assert.equal(await clientAcceptOf(key), await acceptOf(key));
  }
});

Deno.test("tcp websocket: long messages the receiver copies are read into reused buffers, the others into their own; every one arrives whole", async () => {
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol: "rill.v1" });
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => socket.send(e.data as ArrayBuffer);
    return response;
  });
  const ev = events();
  const owned: boolean[] = [];
  const ws = await TcpWebSocket.open(`ws://127.0.0.1:${server.addr.port}/v1/ws`, ["rill.v1"], {}, {
    ...ev.handlers,
    onMessage: (data, own) => {
      owned.push(own);
      ev.handlers.onMessage(data, own);
    },
    // Messages starting with 0xff are copied by this receiver.
    copies: (head) => head[0] === 0xff,
  });
  // Copied: long ones up to 64 KiB read into reused buffers; longer ones, and those not
  // copied, into buffers of their own. Short ones are views into the read buffer.
  const plan: [size: number, first: number, own: boolean][] = [
    [5000, 0xff, false],
    [65536, 0xff, false],
    [65536, 0xff, false],
    [30000, 0x01, true],
    [70000, 0xff, true],
    [9000, 0xff, false],
    [100, 0xff, false],
  ];
  const sent = plan.map(([n, first], k) =>
    Uint8Array.from({ length: n }, (_, i) => i === 0 ? first : (i * 13 + k) & 0xff)
  );
  for (const m of sent) ws.send(m);
  await ev.count(sent.length);
  assert.deepEqual(ev.messages, sent);
  assert.deepEqual(owned, plan.map(([, , own]) => own));
  ws.close(1000);
  await ev.close;
});
