/**
 * Stopping a broker process (SIGTERM): clients that vanished without closing, or that stopped
 * reading, do not keep it alive. Each test gives the stopped broker a minute to exit (a guard
 * against a hang, not a speed figure): without the fixes it stayed up for as long as the
 * client's TCP connection did, or for as long as Deno's idle timer of a vanished WebSocket.
 */
import assert from "node:assert/strict";
import { encodeBatch } from "../../src/protocol/mod.ts";
import { type BrokerProcess, startBroker } from "../_helpers/broker_process.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const enc = new TextEncoder();

/** SIGTERM, then the exit status, or a failure naming what hung after 60 s (then SIGKILL). */
async function stopWithin60s(broker: BrokerProcess): Promise<Deno.CommandStatus> {
  broker.kill("SIGTERM");
  let guard: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<null>((resolve) => guard = setTimeout(() => resolve(null), 60_000));
  const status = await Promise.race([broker.exited, hung]);
  clearTimeout(guard);
  if (status === null) {
    const logged = /stopped/.test(broker.stderr()) ? 'logged "stopped"' : 'never logged "stopped"';
    broker.kill("SIGKILL");
    await broker.exited;
    assert.fail(
      `the broker was still running 60 s after SIGTERM (it ${logged}):\n${
        broker.stderr().slice(-2000)
      }`,
    );
  }
  return status;
}

async function createTopic(url: string, name: string): Promise<void> {
  const res = await fetch(`${url}/v1/topics`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, partitions: 1 }),
  });
  assert.equal(res.status, 201, await res.text());
}

/** Writes `batches` batches of 32 records of 16 KiB (512 KiB each) to partition 0. */
async function fill(url: string, topic: string, batches: number): Promise<void> {
  const value = new Uint8Array(16 * 1024).fill(120);
  for (let i = 0; i < batches; i++) {
    const batch = encodeBatch(Array.from({ length: 32 }, () => ({ value })));
    const res = await fetch(`${url}/v1/topics/${topic}/records?partition=0&acks=1`, {
      method: "POST",
      headers: { "content-type": "application/vnd.rill.batch" },
      body: batch as Uint8Array<ArrayBuffer>,
    });
    assert.equal(res.status, 200, await res.text());
  }
}

/** Opens a TCP connection, sends `head`, and reads until the end of the answer's head. */
async function rawRequest(
  url: string,
  head: string,
): Promise<{ conn: Deno.TcpConn; answer: string }> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(enc.encode(head));
  let answer = "";
  const buf = new Uint8Array(4096);
  while (!answer.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`the broker closed the connection: ${answer}`);
    answer += new TextDecoder().decode(buf.subarray(0, n));
  }
  return { conn, answer };
}

/** Reads `n` bytes from `conn` (and throws if it ends first). */
async function readAtLeast(conn: Deno.TcpConn, n: number): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  for (let got = 0; got < n;) {
    const r = await conn.read(buf);
    if (r === null) throw new Error(`the broker closed the connection after ${got} bytes`);
    got += r;
  }
}

/** A client-to-server WebSocket binary message (masked, with a zero key). */
function wsMessage(payload: Uint8Array): Uint8Array {
  const head = payload.length < 126 ? [0x82, 0x80 | payload.length] : [
    0x82,
    0x80 | 126,
    payload.length >> 8,
    payload.length & 0xff,
  ];
  const out = new Uint8Array(head.length + 4 + payload.length);
  out.set(head);
  out.set(payload, head.length + 4);
  return out;
}

/** A Rill frame: u32 header length, JSON header, no payload. */
function frame(header: Record<string, unknown>): Uint8Array {
  const json = enc.encode(JSON.stringify(header));
  const out = new Uint8Array(4 + json.length);
  new DataView(out.buffer).setUint32(0, json.length);
  out.set(json, 4);
  return out;
}

Deno.test("stop: a WebSocket client process that exited without closing does not keep the broker alive", async () => {
  // Deno pings a silent WebSocket after half the idle timeout; a long one makes its timer
  // outlive the one-minute guard, so a timer left behind by a vanished client shows.
  await using broker = await startBroker({ extraArgs: ["--ws-idle-timeout-ms", "600000"] });
  await createTopic(broker.url, "probe");
  const client = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO}tests/_helpers/ws_vanishing_client.ts`, broker.url, "probe"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(client.code, 0, new TextDecoder().decode(client.stderr));
  assert.equal(new TextDecoder().decode(client.stdout).trim(), "sent 0");
  const status = await stopWithin60s(broker);
  assert.equal(status.code, 0, broker.stderr());
  assert.match(broker.stderr(), /stopped/);
});

Deno.test("stop: a WebSocket client that stopped reading its answers does not hold the broker up", async () => {
  await using broker = await startBroker();
  await createTopic(broker.url, "big");
  await fill(broker.url, "big", 32); // 16 MiB: more than the socket buffers and maxUnsentBytes
  const { conn, answer } = await rawRequest(
    broker.url,
    "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  try {
    assert.match(answer, /^HTTP\/1.1 101/);
    // 32 fetches of 1 MiB each from the start; the client then never reads again.
    for (let id = 1; id <= 32; id++) {
      await conn.write(wsMessage(frame({
        op: "fetch",
        id,
        partitions: [{ topic: "big", partition: 0, offset: 0, maxBytes: 1 << 20 }],
        maxBytes: 1 << 20,
      })));
    }
    // The broker is answering: the rest (more than the socket buffers hold) can never be sent.
    await readAtLeast(conn, 1 << 20);
    const status = await stopWithin60s(broker);
    assert.equal(status.code, 0, broker.stderr());
    assert.match(broker.stderr(), /stopped/);
  } finally {
    conn.close();
  }
});

Deno.test("stop: an HTTP client that stopped reading a record stream does not hold the broker up", async () => {
  await using broker = await startBroker();
  await createTopic(broker.url, "big");
  await fill(broker.url, "big", 32);
  const { conn, answer } = await rawRequest(
    broker.url,
    "GET /v1/topics/big/partitions/0/records?offset=0 HTTP/1.1\r\nHost: x\r\n" +
      "Accept: text/event-stream\r\n\r\n",
  );
  try {
    assert.match(answer, /^HTTP\/1.1 200/);
    await readAtLeast(conn, 1 << 20);
    const status = await stopWithin60s(broker);
    assert.equal(status.code, 0, broker.stderr());
    assert.match(broker.stderr(), /stopped/);
  } finally {
    conn.close();
  }
});
