/**
 * A TCP relay between a client and a broker that understands WebSocket frames (RFC 6455)
 * enough to pass, drop or hold back single frames, and can cut every connection at once (as a
 * network failure would), for tests that need a given interleaving of frames every run.
 *
 * Each accepted connection gets its own connection to the broker. A connection whose first
 * request is a WebSocket upgrade is read as frames once the upgrade is through (the request
 * and the `101` answer pass whole); any other connection passes untouched. Every frame goes
 * to the test's `rule` with its payload (unmasked, for the client's masked frames), which
 * answers:
 * - `"pass"`: forwarded now, after the frames of that direction before it;
 * - `"drop"`: never forwarded (the TCP stream goes on without it);
 * - a promise: the frame is held aside and forwarded once the promise settles; the frames
 *   after it go on meanwhile (so it can reach the other side after them).
 * The frame's bytes are forwarded as they came (still masked).
 *
 * @module
 */

/** A WebSocket frame going through the relay. */
export interface RelayFrame {
  /** the relay's number of the client's connection (0 for the first accepted, then 1, …) */
  conn: number;
  /** "toBroker" (the client's, masked on the wire) or "toClient" */
  direction: "toBroker" | "toClient";
  /** the opcode: 1 text, 2 binary, 8 close, 9 ping, 10 pong (0 a continuation) */
  opcode: number;
  /** the payload, unmasked */
  payload: Uint8Array;
}

/** What becomes of a frame: see the module's documentation. */
export type RelayVerdict = "pass" | "drop" | Promise<unknown>;

/** A running relay. */
export interface WsRelay extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`: give it to the client instead of the broker's URL */
  url: string;
  /** closes every open connection, both sides, at once; new ones are still accepted */
  cut(): void;
}

const HEAD_END = new Uint8Array([13, 10, 13, 10]);

/**
 * Starts a relay to the broker on 127.0.0.1:`port`.
 *
 * @param port the broker's port
 * @param rule what becomes of each WebSocket frame (default: every frame passes)
 * @returns the relay; dispose of it to stop it
 * @example
 * ```ts
 * await using relay = serveWsRelay(brokerPort, (f) => f.opcode === 9 ? "drop" : "pass");
 * ```
 */
export function serveWsRelay(
  port: number,
  rule: (frame: RelayFrame) => RelayVerdict = () => "pass",
): WsRelay {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const pumps = new Set<Promise<void>>();
  let next = 0;
  const close = (c: Deno.Conn) => {
    open.delete(c);
    try {
      c.close();
    } catch { /* closed already */ }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const conn = next++;
      let broker: Deno.Conn;
      try {
        broker = await Deno.connect({ hostname: "127.0.0.1", port });
      } catch {
        close(client);
        continue;
      }
      open.add(client);
      open.add(broker);
      const both = () => {
        close(client);
        close(broker);
      };
      // The client's side knows the connection is a WebSocket one once it sent the upgrade;
      // the broker's once it answered 101.
      let upgrading = false;
      const up = pump(client, broker, (head) => {
        upgrading = /^upgrade:\s*websocket\s*$/im.test(head);
        return upgrading;
      }, (payload, opcode) => rule({ conn, direction: "toBroker", opcode, payload }));
      const down = pump(
        broker,
        client,
        (head) => upgrading && head.startsWith("HTTP/1.1 101"),
        (payload, opcode) => rule({ conn, direction: "toClient", opcode, payload }),
      );
      const done = Promise.all([up.finally(both), down.finally(both)]).then(() => {});
      pumps.add(done);
      done.finally(() => pumps.delete(done));
    }
  })();
  const cut = () => {
    for (const c of [...open]) close(c);
  };
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    cut,
    async [Symbol.asyncDispose]() {
      listener.close();
      cut();
      await accepting.catch(() => {});
      await Promise.all([...pumps]);
    },
  };
}

/**
 * Copies `from` to `to`: the first message's head whole, then, when `isUpgrade(head)`, one
 * WebSocket frame at a time through `rule`; otherwise the rest untouched. Ends when `from`
 * ends or either side fails.
 */
async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  isUpgrade: (head: string) => boolean,
  rule: (payload: Uint8Array, opcode: number) => RelayVerdict,
): Promise<void> {
  // Writes in order of forwarding, one at a time.
  let writing = Promise.resolve();
  const forward = (bytes: Uint8Array) => {
    writing = writing.then(() => writeAll(to, bytes)).catch(() => {});
  };
  let buf: Uint8Array = new Uint8Array(0);
  let frames = false;
  let raw = false;
  const chunk = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(chunk);
      if (n === null) break;
      if (raw) {
        forward(chunk.slice(0, n));
        continue;
      }
      buf = concat(buf, chunk.subarray(0, n));
      if (!frames) {
        const end = indexOf(buf, HEAD_END);
        if (end < 0) continue;
        const head = new TextDecoder().decode(buf.subarray(0, end));
        forward(buf.slice(0, end + 4));
        buf = buf.slice(end + 4);
        if (isUpgrade(head)) frames = true;
        else {
          raw = true;
          if (buf.length > 0) forward(buf);
          continue;
        }
      }
      for (;;) {
        const frame = readFrame(buf);
        if (frame === null) break;
        buf = buf.slice(frame.length);
        const verdict = rule(frame.payload, frame.opcode);
        if (verdict === "pass") forward(frame.bytes);
        else if (verdict !== "drop") {
          verdict.then(() => forward(frame.bytes), () => forward(frame.bytes));
        }
      }
    }
  } catch {
    // a side was closed (cut) or failed: the connection is over
  }
  // Frames still held aside are forwarded when released, if the other side is still open.
  await writing;
}

/** The first frame in `buf`, or null until it is whole. */
function readFrame(
  buf: Uint8Array,
): { bytes: Uint8Array; length: number; opcode: number; payload: Uint8Array } | null {
  if (buf.length < 2) return null;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf[2] << 8 | buf[3];
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(new DataView(buf.buffer, buf.byteOffset + 2, 8).getBigUint64(0));
    at = 10;
  }
  const keyAt = at;
  if (masked) at += 4;
  const length = at + len;
  if (buf.length < length) return null;
  const payload = buf.slice(at, length);
  if (masked) { for (let i = 0; i < len; i++) payload[i] ^= buf[keyAt + (i & 3)]; }
  return { bytes: buf.slice(0, length), length, opcode, payload };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOf(buf: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= buf.length; i++) {
    for (let j = 0; j < needle.length; j++) if (buf[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}
