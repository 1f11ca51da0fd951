/**
 * Idle WebSocket connections (docs/http-api.md, "Idle connections"): a silent connection is
 * pinged and closed (1001) when no pong comes; one that answers pings, or keeps sending, stays
 * open. The broker sweeps its connections' idle state instead of re-arming Deno's timer on
 * every message (src/ws/deno_socket.ts `IdlePings`); these check what a client sees.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serveBroker } from "./_served.ts";
import { encodeFrame } from "../../src/protocol/ws_frames.ts";

const IDLE_MS = 400;
const enc = new TextEncoder();

/** A WebSocket client on a bare TCP connection: it answers pings only when told to. */
async function rawClient(url: string) {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(enc.encode(
    "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  let buf = new Uint8Array(0);
  const more = async (): Promise<boolean> => {
    const chunk = new Uint8Array(4096);
    const n = await conn.read(chunk);
    if (n === null) return false;
    const joined = new Uint8Array(buf.length + n);
    joined.set(buf);
    joined.set(chunk.subarray(0, n), buf.length);
    buf = joined;
    return true;
  };
  for (;;) {
    const head = new TextDecoder().decode(buf);
    const end = head.indexOf("\r\n\r\n");
    if (end >= 0) {
      assert.match(head, /^HTTP\/1.1 101/);
      buf = buf.subarray(end + 4);
      break;
    }
    if (!await more()) throw new Error("closed during the handshake");
  }
  return {
    /** The next frame from the broker (under 64 KiB), or null once the connection ended. */
    async next(): Promise<{ opcode: number; payload: Uint8Array } | null> {
      const sizes = () => {
        if (buf.length < 2) return null;
        const short = buf[1] & 0x7f;
        assert.ok(short <= 126, "a frame under 64 KiB");
        if (short < 126) return { head: 2, length: short };
        return buf.length < 4 ? null : { head: 4, length: buf[2] << 8 | buf[3] };
      };
      let s = sizes();
      while (s === null || buf.length < s.head + s.length) {
        if (!await more()) return null;
        s = sizes();
      }
      const frame = { opcode: buf[0] & 0x0f, payload: buf.slice(s.head, s.head + s.length) };
      buf = buf.subarray(s.head + s.length);
      return frame;
    },
    /** Sends a masked frame (zero key) of `opcode`. */
    async send(opcode: number, payload: Uint8Array): Promise<void> {
      assert.ok(payload.length < 126);
      const frame = new Uint8Array(6 + payload.length);
      frame[0] = 0x80 | opcode;
      frame[1] = 0x80 | payload.length;
      frame.set(payload, 6);
      await conn.write(frame);
    },
    close: () => conn.close(),
  };
}

Deno.test("ws idle: a connection that answers no ping is pinged, then closed with 1001", async () => {
  await using served = await serveBroker({ limits: { idleTimeoutMs: IDLE_MS } });
  const client = await rawClient(served.url);
  try {
    const started = performance.now();
    const ping = await client.next();
    assert.equal(ping?.opcode, 0x9);
    // Pinged after about half the timeout of silence (17/32 to 18/32 of it, by the sweep).
    assert.ok(performance.now() - started >= IDLE_MS / 2, "not pinged before half the timeout");
    const close = await client.next();
    assert.equal(close?.opcode, 0x8);
    assert.equal(close!.payload[0] << 8 | close!.payload[1], 1001);
    assert.equal(served.ws!.connections, 0);
  } finally {
    client.close();
  }
});

Deno.test("ws idle: a silent connection that answers pings stays open", async () => {
  await using served = await serveBroker({ limits: { idleTimeoutMs: IDLE_MS } });
  const client = await rawClient(served.url);
  try {
    // Three pings in a row, each answered: each comes only if the connection was kept.
    for (let i = 0; i < 3; i++) {
      const ping = await client.next();
      assert.equal(ping?.opcode, 0x9, `ping ${i}`);
      await client.send(0xa, ping!.payload);
    }
    assert.equal(served.ws!.connections, 1);
  } finally {
    client.close();
  }
});

Deno.test("ws idle: a connection that keeps sending is neither pinged nor closed", async () => {
  await using served = await serveBroker({ limits: { idleTimeoutMs: IDLE_MS } });
  const client = await rawClient(served.url);
  try {
    // A request every 40 ms for three timeouts, each answered; no ping in between.
    const hello = encodeFrame({ op: "hello", id: 1 });
    for (let sent = 0; sent < (3 * IDLE_MS) / 40; sent++) {
      await client.send(0x2, hello);
      const answer = await client.next();
      assert.equal(answer?.opcode, 0x2, `answer ${sent} (not a ping or a close)`);
      await new Promise((r) => setTimeout(r, 40));
    }
    assert.equal(served.ws!.connections, 1);
  } finally {
    client.close();
  }
});
