/**
 * The client side of a WebSocket (RFC 6455) over a TCP connection of Deno's own
 * (`Deno.connect`, or `Deno.connectTls` for `wss:`), with TCP_NODELAY set: the socket the
 * client's WebSocket connection (ws_connection.ts) uses in Deno.
 *
 * Why not the runtime's WebSocket: Deno's own WebSocket client writes a message longer than
 * 1 KiB as two writes with Nagle's algorithm on, so the second waits ~40 ms for the peer's
 * delayed ACK (every 1 KiB record would take 40 ms), and a frame sent while an earlier one is
 * unacknowledged waits the same way; nothing in its API sets TCP_NODELAY. The `ws` npm
 * package sets it, but over `node:net` it cost the client ~40 µs more per produce round trip
 * than this (measured: one producer awaiting 1 KiB sends, 113 vs 75 µs of client CPU a record
 * on a loaded machine, the same broker). This is the least of the protocol the broker's endpoint needs: the opening
 * handshake (with the `Sec-WebSocket-Accept` check), masked binary frames out, binary
 * messages in (fragments joined), ping answered with pong, the closing handshake. Text
 * messages are ignored (Rill's frames are binary).
 *
 * Outside Deno (browsers, Node 22+) the standard `WebSocket` is used instead: they set
 * TCP_NODELAY and write frames whole.
 *
 * @module
 */

// A full npm: specifier, as in src/protocol/crc32c.ts: the client resolves without the
// repository's import map.
// deno-lint-ignore no-import-prefix
import { createSHA1, type IHasher } from "npm:hash-wasm@4.13.0";

/** The callbacks of a {@linkcode TcpWebSocket}. */
export interface TcpWebSocketEvents {
  /**
   * a binary message: with `owned`, a buffer of its own; else a view into the read buffer,
   * valid only during the call (copy what is kept)
   */
  onMessage(data: Uint8Array<ArrayBuffer>, owned: boolean): void;
  /**
   * whether `onMessage` copies what it keeps of a message starting with `head` (its first 4
   * bytes): a long one is then read into a reused buffer (not `owned`) rather than one of
   * its own, which is garbage once copied. Without it, every long message gets its own.
   */
  copies?(head: Uint8Array): boolean;
  /** the connection closed (once): the peer's close code and reason, or 1006 if it broke */
  onClose(code: number, reason: string): void;
}

/** What of `Deno` this module uses (declared here: the npm build has no Deno types). */
interface DenoTcp {
  connect(o: { hostname: string; port: number }): Promise<DenoConn>;
  connectTls(o: { hostname: string; port: number }): Promise<DenoConn>;
}

interface DenoConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  setNoDelay?(on?: boolean): void;
}

/** No chunk being written. */
const NOTHING = new Uint8Array(0);
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** hash-wasm's SHA-1, compiled once a process (null where WebAssembly is refused). */
let sha1: Promise<IHasher | null> | undefined;

/**
 * The `Sec-WebSocket-Accept` the server must answer to `key`: base64 of SHA-1(key + GUID).
 * Summed by hash-wasm's synchronous SHA-1 (crypto.subtle.digest cost the main thread ~0.5-1 ms
 * a connection in a process opening 1,000 of them; ~10 µs this way), or by
 * crypto.subtle where WebAssembly is refused.
 *
 * @param key the request's Sec-WebSocket-Key
 * @returns the expected accept value
 */
export async function acceptOf(key: string): Promise<string> {
  const data = encoder.encode(key + GUID);
  const hasher = await (sha1 ??= createSHA1().catch(() => null));
  if (hasher === null) {
    return base64(new Uint8Array(await crypto.subtle.digest("SHA-1", data)));
  }
  hasher.init();
  hasher.update(data);
  return base64(hasher.digest("binary"));
}
const encoder = new TextEncoder();
/**
 * The read buffer's size (small: a client may hold thousands of idle connections); a frame
 * longer than half of it is read straight into a buffer of its own.
 */
const READ_BYTES = 8 * 1024;
/** The most bytes the reused send buffer grows to (bigger frames get their own). */
const MAX_SCRATCH = 64 * 1024;
/**
 * The size of the reused buffers a long message is read into when its receiver copies it
 * ({@linkcode TcpWebSocketEvents.copies}): the broker's parts of a long answer (64 KiB).
 */
const REUSED_BYTES = 64 * 1024;
/** The most reused buffers kept for the next long messages, shared by a process's sockets. */
const REUSED_KEPT = 8;
const reused: Uint8Array<ArrayBuffer>[] = [];

/** The largest message accepted (the broker's answers are bounded far below this). */
const MAX_MESSAGE = 256 * 1024 * 1024;

/**
 * Whether this runtime can open a {@linkcode TcpWebSocket} (Deno).
 *
 * @returns true in Deno
 * @example
 * ```ts
 * if (tcpWebSocketAvailable()) await TcpWebSocket.open(url, [], {}, events);
 * ```
 */
export function tcpWebSocketAvailable(): boolean {
  const d = (globalThis as { Deno?: Partial<DenoTcp> }).Deno;
  return typeof d?.connect === "function" && typeof d?.connectTls === "function";
}

/** The opening handshake was refused or broken. */
export class TcpWebSocketRefused extends Error {
  /** @param message why */
  constructor(message: string) {
    super(message);
    this.name = "TcpWebSocketRefused";
  }
}

function base64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * One WebSocket connection over a Deno TCP (or TLS) connection.
 *
 * @example
 * ```ts
 * const socket = await TcpWebSocket.open("ws://127.0.0.1:8092/v1/ws", ["rill.v1"], {}, {
 *   onMessage: (data) => console.log(data.byteLength),
 *   onClose: (code) => console.log("closed", code),
 * });
 * socket.send(new Uint8Array([1, 2, 3]));
 * socket.close(1000);
 * ```
 */
export class TcpWebSocket {
  readonly #conn: DenoConn;
  readonly #events: TcpWebSocketEvents;
  /** frames waiting while a write is under way */
  #queue: Uint8Array[] = [];
  #writing = false;
  /** whether our close frame was queued (nothing may follow it) */
  #closing = false;
  #closed = false;
  /** a buffer frames are built in, reused once its write is done (no garbage per frame) */
  #scratch = new Uint8Array(0);
  /** #scratch as words, for masking */
  #scratchWords: Uint32Array = new Uint32Array(0);
  /** whether a frame built in #scratch is still being written */
  #scratchBusy = false;
  /** fragments of a message in progress */
  #fragments: Uint8Array[] | null = null;
  #fragmentBytes = 0;
  #fragmentsText = false;

  private constructor(conn: DenoConn, events: TcpWebSocketEvents) {
    this.#conn = conn;
    this.#events = events;
  }

  /**
   * Connects and completes the opening handshake.
   *
   * @param url a `ws:` or `wss:` URL
   * @param protocols subprotocols to offer (the server must pick the first, if any)
   * @param headers more request headers (e.g. `Authorization`)
   * @param events where messages and the close go
   * @param signal gives up (the TCP connection closed) when it aborts
   * @returns the open socket
   * @throws {TcpWebSocketRefused} when the server does not switch protocols (a status other
   *   than 101, a wrong accept key or subprotocol), or the connection fails
   * @throws the signal's reason when it aborted first
   */
  static async open(
    url: string,
    protocols: string[],
    headers: Record<string, string>,
    events: TcpWebSocketEvents,
    signal?: AbortSignal,
  ): Promise<TcpWebSocket> {
    const u = new URL(url);
    const tls = u.protocol === "wss:";
    if (!tls && u.protocol !== "ws:") throw new TcpWebSocketRefused(`Not a ws: URL: ${url}`);
    const hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = u.port === "" ? (tls ? 443 : 80) : Number(u.port);
    const deno = (globalThis as unknown as { Deno: DenoTcp }).Deno;
    let conn: DenoConn;
    const connecting = tls ? deno.connectTls({ hostname, port }) : deno.connect({ hostname, port });
    let abort: () => void = () => {};
    const aborted = signal === undefined ? null : new Promise<never>((_, reject) => {
      abort = () => reject(signal.reason);
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
    });
    aborted?.catch(() => {});
    try {
      conn = await (aborted === null ? connecting : Promise.race([connecting, aborted]));
    } catch (e) {
      // Given up while connecting: a connection made after is closed.
      if (signal?.aborted) {
        connecting.then((c) => c.close(), () => {});
        throw e;
      }
      throw new TcpWebSocketRefused(
        `Cannot connect to ${u.host}: ${e instanceof Error ? e.message : e}`,
      );
    }
    // Given up during the handshake: closing the connection ends its pending read.
    const close = () => {
      try {
        conn.close();
      } catch { /* closed already */ }
    };
    signal?.addEventListener("abort", close, { once: true });
    try {
      conn.setNoDelay?.(true);
      const key = base64(crypto.getRandomValues(new Uint8Array(16)));
      let request = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
        `Sec-WebSocket-Version: 13\r\n`;
      if (protocols.length > 0) request += `Sec-WebSocket-Protocol: ${protocols.join(", ")}\r\n`;
      for (const [name, value] of Object.entries(headers)) request += `${name}: ${value}\r\n`;
      await writeAll(conn, encoder.encode(request + "\r\n"));
      // The answer's head, and whatever frames followed it in the same reads.
      let buf = new Uint8Array(4096);
      let end = 0;
      let headEnd = -1;
      while (headEnd < 0) {
        if (end === buf.length) {
          if (buf.length >= 64 * 1024) {
            throw new TcpWebSocketRefused("The answer's head is too long");
          }
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf);
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(end));
        if (n === null) throw new TcpWebSocketRefused("The server closed during the handshake");
        end += n;
        for (let i = Math.max(0, end - n - 3); i + 3 < end; i++) {
          if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
            headEnd = i + 4;
            break;
          }
        }
      }
      const head = new TextDecoder().decode(buf.subarray(0, headEnd)).split("\r\n");
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head[0])?.[1];
      if (status !== "101") {
        throw new TcpWebSocketRefused(`The server answered ${head[0]} instead of switching`);
      }
      const fields = new Map<string, string>();
      for (const line of head.slice(1)) {
        const colon = line.indexOf(":");
        if (colon > 0) {
          fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        }
      }
      if (fields.get("sec-websocket-accept") !== await acceptOf(key)) {
        throw new TcpWebSocketRefused("The server's Sec-WebSocket-Accept is wrong");
      }
      const chosen = fields.get("sec-websocket-protocol");
      if (chosen !== undefined && !protocols.includes(chosen)) {
        throw new TcpWebSocketRefused(`The server chose subprotocol ${chosen}, not offered`);
      }
      if (protocols.length > 0 && chosen === undefined) {
        throw new TcpWebSocketRefused("The server chose no subprotocol");
      }
      if (signal?.aborted) throw signal.reason;
      signal?.removeEventListener("abort", abort);
      signal?.removeEventListener("abort", close);
      const socket = new TcpWebSocket(conn, events);
      const rest = new Uint8Array(Math.max(READ_BYTES, end - headEnd));
      rest.set(buf.subarray(headEnd, end));
      void socket.#readLoop(rest, end - headEnd);
      return socket;
    } catch (e) {
      signal?.removeEventListener("abort", abort);
      signal?.removeEventListener("abort", close);
      close();
      if (signal?.aborted) throw signal.reason;
      if (e instanceof TcpWebSocketRefused) throw e;
      throw new TcpWebSocketRefused(
        `The WebSocket handshake with ${u.host} failed: ${e instanceof Error ? e.message : e}`,
      );
    }
  }

  /**
   * Sends one binary message (masked, as a client must). Frames go out in the order sent;
   * a send after close is dropped.
   *
   * @param data the message
   */
  send(data: Uint8Array): void {
    if (this.#closing) return;
    this.#write(frameOf(0x2, data));
  }

  /**
   * Sends one binary message built in place by `build`, which is handed an allocator: it asks
   * for the message's size and writes the message into the bytes it gets (as
   * `encodeFrame(header, payload, alloc)` does), returning the bytes written (a prefix of
   * what it got). The message is masked where it was written: no copy, and no garbage while
   * the connection's scratch buffer is free.
   *
   * @param build writes the message
   */
  sendBuilt(build: (alloc: (size: number) => Uint8Array<ArrayBuffer>) => Uint8Array): void {
    if (this.#closing) return;
    this.sendAllocated(build(this.alloc));
  }

  /**
   * Gives bytes to write a message of `size` bytes in, for {@linkcode sendAllocated}: in the
   * connection's reused buffer while it is free (so, one message at a time: send it before
   * asking for the next), else in a new one. Bound to the socket (pass it as it is).
   *
   * @param size the message's size
   * @returns `size` bytes to write the message in
   */
  readonly alloc = (size: number): Uint8Array<ArrayBuffer> => {
    // The message starts 16 bytes in (aligned), after the frame's head and masking key;
    // 3 more bytes so that it is masked 4 bytes at a time.
    const need = 16 + size + 3;
    let whole = this.#scratch;
    if (this.#scratchBusy || need > MAX_SCRATCH) whole = new Uint8Array(need);
    else if (need > whole.length) {
      whole = this.#scratch = new Uint8Array(
        Math.min(MAX_SCRATCH, Math.max(need, whole.length * 2, 1024)),
      );
      this.#scratchWords = wordsOf(whole.buffer);
    }
    return whole.subarray(16, 16 + size);
  };

  /**
   * Sends one binary message written in bytes {@linkcode alloc} gave (all of them or a
   * prefix). The message is masked where it was written: no copy, and no garbage while the
   * connection's reused buffer is free.
   *
   * @param message the message
   */
  sendAllocated(message: Uint8Array): void {
    if (this.#closing) return;
    const len = message.byteLength;
    if (message.byteOffset !== 16 || message.buffer.byteLength < 16 + len + 3) {
      // Not written where alloc put it.
      this.#write(frameOf(0x2, message));
      return;
    }
    const scratch = message.buffer === this.#scratch.buffer;
    const whole = scratch ? this.#scratch : new Uint8Array(message.buffer as ArrayBuffer);
    const head = len < 126 ? 2 : len < 0x10000 ? 4 : 10;
    const at = 12 - head;
    writeHead(whole, at, 0x2, len);
    mask(scratch ? this.#scratchWords : wordsOf(whole.buffer), len);
    if (scratch) this.#scratchBusy = true;
    this.#write(whole.subarray(at, 16 + len));
  }

  /**
   * Starts the closing handshake: sends a close frame, then closes the TCP connection once
   * it is written. `onClose` follows (with this code).
   *
   * @param code the close code (default 1000)
   */
  close(code = 1000): void {
    if (this.#closing) return;
    const payload = new Uint8Array([code >> 8, code & 0xff]);
    this.#write(frameOf(0x8, payload));
    this.#closing = true;
    this.#finishWhenWritten(code, "");
  }

  #closeCode = 1000;
  #closeReason = "";

  #finishWhenWritten(code: number, reason: string): void {
    this.#closeCode = code;
    this.#closeReason = reason;
    if (!this.#writing) this.#end(code, reason);
  }

  #write(frame: Uint8Array): void {
    if (this.#closed) return;
    if (this.#writing) {
      this.#queue.push(frame);
      return;
    }
    this.#writing = true;
    this.#writeChunk(frame);
  }

  /** the chunk being written (one at a time: the others queue) */
  #inWrite: Uint8Array = NOTHING;

  /**
   * Writes `chunk`, then what was queued meanwhile (in one write), until nothing waits. The
   * write's outcome goes to two handlers bound once ({@linkcode #written}, {@linkcode
   * #writeFailed}), the chunk in a field: no closures per message.
   */
  #writeChunk(chunk: Uint8Array): void {
    this.#inWrite = chunk;
    this.#conn.write(chunk).then(this.#written, this.#writeFailed);
  }

  readonly #written = (n: number): void => {
    const chunk = this.#inWrite;
    if (n < chunk.byteLength) return this.#writeChunk(chunk.subarray(n));
    if (chunk.buffer === this.#scratch.buffer) this.#scratchBusy = false;
    const queue = this.#queue;
    if (queue.length > 0) {
      this.#queue = [];
      if (queue.length === 1) return this.#writeChunk(queue[0]);
      const joined = concat(queue);
      // The scratch buffer's frame, if queued, is copied now.
      this.#scratchBusy = false;
      return this.#writeChunk(joined);
    }
    this.#writing = false;
    this.#inWrite = NOTHING;
    if (this.#closing) this.#end(this.#closeCode, this.#closeReason);
  };

  readonly #writeFailed = (): void => {
    this.#writing = false;
    this.#inWrite = NOTHING;
    this.#end(1006, "");
  };

  /** Closes the TCP connection and reports the close, once. */
  #end(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    this.#queue = [];
    try {
      this.#conn.close();
    } catch { /* closed already */ }
    this.#events.onClose(code, reason);
  }

  async #readLoop(buf: Uint8Array, end: number): Promise<void> {
    let start = 0;
    try {
      for (;;) {
        // Every whole frame in the buffer.
        for (;;) {
          const avail = end - start;
          if (avail < 2) break;
          const b0 = buf[start];
          const b1 = buf[start + 1];
          if ((b1 & 0x80) !== 0) throw new Error("a masked frame from the server");
          let len = b1 & 0x7f;
          let p = start + 2;
          if (len === 126) {
            if (avail < 4) break;
            len = (buf[p] << 8) | buf[p + 1];
            p += 2;
          } else if (len === 127) {
            if (avail < 10) break;
            const hi = (buf[p] << 24 | buf[p + 1] << 16 | buf[p + 2] << 8 | buf[p + 3]) >>> 0;
            const lo = (buf[p + 4] << 24 | buf[p + 5] << 16 | buf[p + 6] << 8 | buf[p + 7]) >>> 0;
            len = hi * 0x100000000 + lo;
            p += 8;
          }
          if (len > MAX_MESSAGE) throw new Error(`a frame of ${len} bytes`);
          const have = end - p;
          if (have < len) {
            if (len > READ_BYTES / 2) {
              // A big frame: read it straight into a buffer of its own, or into a reused one
              // when the receiver copies what it keeps of it (a part of a long answer: each
              // part would otherwise be a 64 KiB buffer allocated, copied once and dropped).
              const whole = len <= REUSED_BYTES && have >= 4 &&
                  this.#events.copies?.(buf.subarray(p, p + 4)) === true
                ? reused.pop() ?? new Uint8Array(REUSED_BYTES)
                : null;
              const payload = whole === null ? new Uint8Array(len) : whole.subarray(0, len);
              payload.set(buf.subarray(p, end));
              let filled = have;
              while (filled < len) {
                const n = await this.#conn.read(payload.subarray(filled));
                if (n === null) throw new Error("closed mid-frame");
                filled += n;
              }
              start = end = 0;
              try {
                if (this.#frame(b0, payload, whole === null)) return;
              } finally {
                if (whole !== null && reused.length < REUSED_KEPT) reused.push(whole);
              }
              continue;
            }
            break;
          }
          start = p + len;
          if (this.#frame(b0, buf.subarray(p, p + len) as Uint8Array<ArrayBuffer>, false)) {
            return;
          }
        }
        if (start === end) start = end = 0;
        else if (buf.length - end < READ_BYTES / 2) {
          buf.copyWithin(0, start, end);
          end -= start;
          start = 0;
        }
        // Empty (every frame read, the usual case between answers): the buffer itself, not a
        // view of it made per read.
        const n = await this.#conn.read(end === 0 ? buf : buf.subarray(end));
        if (n === null) {
          this.#end(this.#closing ? this.#closeCode : 1006, this.#closeReason);
          return;
        }
        end += n;
      }
    } catch {
      // A broken connection, or one closed by close(): reported once either way.
      this.#end(this.#closing ? this.#closeCode : 1006, this.#closeReason);
    }
  }

  /** Handles one frame; true once the connection is done. */
  #frame(b0: number, payload: Uint8Array<ArrayBuffer>, owned: boolean): boolean {
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    switch (opcode) {
      case 0x1: // text (ignored: Rill's frames are binary)
      case 0x2: // binary
        if (this.#fragments !== null) throw new Error("a new message inside a fragmented one");
        if (fin) {
          if (opcode === 0x2) this.#events.onMessage(payload, owned);
        } else {
          this.#fragments = [owned ? payload : payload.slice()];
          this.#fragmentBytes = payload.byteLength;
          this.#fragmentsText = opcode === 0x1;
        }
        return false;
      case 0x0: { // continuation
        const fragments = this.#fragments;
        if (fragments === null) throw new Error("a continuation of no message");
        fragments.push(owned ? payload : payload.slice());
        this.#fragmentBytes += payload.byteLength;
        if (this.#fragmentBytes > MAX_MESSAGE) throw new Error("a message too long");
        if (fin) {
          this.#fragments = null;
          if (!this.#fragmentsText) this.#events.onMessage(concat(fragments), true);
        }
        return false;
      }
      case 0x8: { // close
        const code = payload.byteLength >= 2 ? (payload[0] << 8) | payload[1] : 1005;
        const reason = payload.byteLength > 2 ? new TextDecoder().decode(payload.subarray(2)) : "";
        if (!this.#closing) {
          // Echo the close, then end once it is written.
          this.#write(frameOf(0x8, payload.subarray(0, Math.min(2, payload.byteLength))));
          this.#closing = true;
        }
        this.#finishWhenWritten(code, reason);
        return true;
      }
      case 0x9: // ping
        if (!this.#closing) this.#write(frameOf(0xa, payload));
        return false;
      default: // pong, reserved
        return false;
    }
  }
}

async function writeAll(conn: DenoConn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await conn.write(off === 0 ? bytes : bytes.subarray(off));
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.byteLength;
  }
  return out;
}

/** Random masking keys, fetched 1,024 at a time. */
const keys = new Uint32Array(1024);
let keyAt = keys.length;

function maskKey(): number {
  if (keyAt === keys.length) {
    crypto.getRandomValues(keys);
    keyAt = 0;
  }
  return keys[keyAt++];
}

/** Writes a frame's head (FIN set, masked) of `opcode` and length `len` at `at`. */
function writeHead(out: Uint8Array, at: number, opcode: number, len: number): void {
  out[at] = 0x80 | opcode;
  if (len < 126) out[at + 1] = 0x80 | len;
  else if (len < 0x10000) {
    out[at + 1] = 0x80 | 126;
    out[at + 2] = len >> 8;
    out[at + 3] = len & 0xff;
  } else {
    out[at + 1] = 0x80 | 127;
    const hi = Math.floor(len / 0x100000000);
    out[at + 2] = hi >>> 24;
    out[at + 3] = (hi >> 16) & 0xff;
    out[at + 4] = (hi >> 8) & 0xff;
    out[at + 5] = hi & 0xff;
    out[at + 6] = len >>> 24;
    out[at + 7] = (len >> 16) & 0xff;
    out[at + 8] = (len >> 8) & 0xff;
    out[at + 9] = len & 0xff;
  }
}

/**
 * Masks the `len` bytes at offset 16 of a buffer (which has 3 bytes to spare after them),
 * given as words, with a fresh key (RFC 6455 5.3), written at offset 12, just before them.
 */
function mask(words: Uint32Array, len: number): void {
  const key = maskKey();
  words[3] = key;
  // The key's bytes repeat every 4 payload bytes: XOR whole words with it (the bytes past the
  // payload are scratch).
  const end = 4 + ((len + 3) >> 2);
  for (let i = 4; i < end; i++) words[i] ^= key;
}

/** A buffer's whole words (for {@linkcode mask}: a message's padding is within them). */
function wordsOf(buffer: ArrayBufferLike): Uint32Array {
  return new Uint32Array(buffer, 0, buffer.byteLength >> 2);
}

/** A masked frame (FIN set) of `opcode` carrying `data`. */
function frameOf(opcode: number, data: Uint8Array): Uint8Array {
  const len = data.byteLength;
  const head = len < 126 ? 2 : len < 0x10000 ? 4 : 10;
  const whole = new Uint8Array(16 + len + 3);
  whole.set(data, 16);
  writeHead(whole, 12 - head, opcode, len);
  mask(wordsOf(whole.buffer), len);
  return whole.subarray(12 - head, 16 + len);
}
