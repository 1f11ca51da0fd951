/**
 * A follower's HTTP/1.1 connection to its leader: one kept-alive TCP connection, one
 * request at a time, each response body read straight into one buffer.
 *
 * Replica fetches are the broker's hottest inter-broker traffic (every replicated byte
 * crosses it once per follower). `fetch()` hands a response body to JavaScript chunk by
 * chunk through a stream and copies it again to collect it, which costs about three times
 * the CPU per byte of reading the socket into a buffer of the announced length (measured
 * on loopback with 256 KiB bodies). This client speaks the same HTTP to the same routes;
 * only `http:` leaders use it (for `https:` the fetcher keeps `fetch()`, which trusts the
 * same certificates as the rest of the broker).
 *
 * It understands what a Rill broker (Deno.serve) answers: a status line, headers, and a
 * body with `Content-Length` or `Transfer-Encoding: chunked`. A request on a connection
 * the leader closed while it was idle is retried once on a new connection.
 *
 * @module
 */

const CRLF2 = [13, 10, 13, 10];
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
/** The largest response head accepted (status line and headers). */
const MAX_HEAD_BYTES = 64 * 1024;
/** The largest body kept in the connection's reused buffer. */
const MAX_RETAINED_BYTES = 2 * 1024 * 1024;

/** A response read by {@linkcode LeaderConnection.get}. */
export interface LeaderResponse {
  /** the HTTP status */
  status: number;
  /** the response headers, names lowercased */
  headers: Map<string, string>;
  /**
   * the body; it may be a view of the connection's buffer, valid until the next request
   * on the connection
   */
  body: Uint8Array;
}

/**
 * One kept-alive HTTP/1.1 connection to a leader (plain `http:` only).
 *
 * @example
 * ```ts
 * const conn = new LeaderConnection("http://127.0.0.1:8092");
 * const res = await conn.get("/v1/topics/t/partitions/0/records?offset=0&replicaId=2", {
 *   Accept: "application/vnd.rill.batch",
 * });
 * conn.close();
 * ```
 */
export class LeaderConnection {
  readonly #hostname: string;
  readonly #port: number;
  readonly #host: string;
  #conn: Deno.TcpConn | null = null;
  /** bytes read past the end of the last response (none with one request at a time) */
  #head = new Uint8Array(16 * 1024);
  #headLen = 0;
  #body = new Uint8Array(0);
  #closed = false;

  /**
   * @param url the leader's `http:` URL (only its host and port are used)
   * @throws {TypeError} when the URL is not `http:`
   */
  constructor(url: string) {
    const u = new URL(url);
    if (u.protocol !== "http:") throw new TypeError(`Only http: leaders, got ${u.protocol}`);
    this.#hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
    this.#port = Number(u.port || 80);
    this.#host = u.host;
  }

  /**
   * Sends a GET and reads the whole response.
   *
   * @param pathAndQuery the path with its query string
   * @param headers request headers
   * @returns status, headers and body (a view valid until the next request)
   * @throws {Error} when the leader cannot be reached or the connection breaks
   */
  get(pathAndQuery: string, headers: Record<string, string>): Promise<LeaderResponse> {
    return this.send("GET", pathAndQuery, headers);
  }

  /**
   * Sends a request (a GET, or a POST with a body, e.g. a multi-partition fetch) and reads
   * the whole response. Retried once on a new connection when the kept-alive one had gone
   * stale before any byte of the answer.
   *
   * @param method the HTTP method
   * @param pathAndQuery the path with its query string
   * @param headers request headers
   * @param body the request body
   * @returns status, headers and body (a view valid until the next request)
   * @throws {Error} when the leader cannot be reached or the connection breaks
   */
  async send(
    method: string,
    pathAndQuery: string,
    headers: Record<string, string>,
    body?: Uint8Array,
  ): Promise<LeaderResponse> {
    let head = `${method} ${pathAndQuery} HTTP/1.1\r\nhost: ${this.#host}\r\n`;
    for (const k in headers) head += `${k}: ${headers[k]}\r\n`;
    if (body !== undefined) head += `content-length: ${body.length}\r\n`;
    const headBytes = encoder.encode(head + "\r\n");
    let request = headBytes;
    if (body !== undefined) {
      request = new Uint8Array(headBytes.length + body.length);
      request.set(headBytes);
      request.set(body, headBytes.length);
    }
    const reused = this.#conn !== null;
    try {
      return await this.#exchange(request);
    } catch (e) {
      this.#drop();
      // An idle kept-alive connection the leader closed: retry once on a new one.
      if (!reused || this.#closed || !(e instanceof StaleConnection)) throw unwrap(e);
      return await this.#exchange(request).catch((e2) => {
        this.#drop();
        throw unwrap(e2);
      });
    }
  }

  /** Closes the connection (a request in progress fails). */
  close(): void {
    this.#closed = true;
    this.#drop();
  }

  #drop(): void {
    const c = this.#conn;
    this.#conn = null;
    this.#headLen = 0;
    try {
      c?.close();
    } catch {
      // already closed
    }
  }

  async #exchange(request: Uint8Array): Promise<LeaderResponse> {
    if (this.#closed) throw new Error("The connection to the leader is closed");
    if (this.#conn === null) {
      this.#conn = await Deno.connect({ hostname: this.#hostname, port: this.#port });
      this.#conn.setNoDelay(true);
    }
    const conn = this.#conn;
    let sent = 0;
    try {
      while (sent < request.length) sent += await conn.write(request.subarray(sent));
    } catch (e) {
      throw new StaleConnection(e);
    }
    // Read the head.
    let end = -1;
    let scanned = 0;
    let first = true;
    while (end < 0) {
      for (let i = Math.max(3, scanned); i < this.#headLen; i++) {
        if (
          this.#head[i] === CRLF2[3] && this.#head[i - 1] === CRLF2[2] &&
          this.#head[i - 2] === CRLF2[1] && this.#head[i - 3] === CRLF2[0]
        ) {
          end = i + 1;
          break;
        }
      }
      if (end >= 0) break;
      scanned = this.#headLen;
      if (this.#headLen === this.#head.length) {
        if (this.#head.length >= MAX_HEAD_BYTES) {
          throw new Error("The leader's response head is too large");
        }
        const grown = new Uint8Array(this.#head.length * 2);
        grown.set(this.#head);
        this.#head = grown;
      }
      let n: number | null;
      try {
        n = await conn.read(this.#head.subarray(this.#headLen));
      } catch (e) {
        if (first) throw new StaleConnection(e);
        throw e;
      }
      if (n === null) {
        if (first) throw new StaleConnection(new Error("closed by the leader"));
        throw new Error("The leader closed the connection mid-response");
      }
      first = false;
      this.#headLen += n;
    }
    const lines = latin1.decode(this.#head.subarray(0, end - 4)).split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    if (!lines[0].startsWith("HTTP/1.") || !Number.isInteger(status)) {
      throw new Error(`The leader answered a malformed status line: ${lines[0].slice(0, 80)}`);
    }
    const headers = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(":");
      if (colon > 0) {
        headers.set(
          lines[i].slice(0, colon).trim().toLowerCase(),
          lines[i].slice(colon + 1).trim(),
        );
      }
    }
    // The bytes after the head are the start of the body.
    const extra = this.#head.subarray(end, this.#headLen);
    let body: Uint8Array;
    let leftover: Uint8Array;
    if ((headers.get("transfer-encoding") ?? "").toLowerCase().includes("chunked")) {
      [body, leftover] = await this.#readChunked(conn, extra.slice());
    } else {
      const length = Number(headers.get("content-length") ?? "0");
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new Error(`The leader answered a bad Content-Length`);
      }
      // Answers up to MAX_RETAINED_BYTES reuse one buffer; a larger one (a follower catching
      // up) gets its own, so that an idle connection never holds more than that.
      if (length > MAX_RETAINED_BYTES) body = new Uint8Array(length);
      else {
        if (this.#body.length < length) {
          this.#body = new Uint8Array(Math.min(MAX_RETAINED_BYTES, Math.max(length, 256 * 1024)));
        }
        body = this.#body.subarray(0, length);
      }
      const pre = Math.min(length, extra.length);
      body.set(extra.subarray(0, pre));
      leftover = extra.subarray(pre);
      let got = pre;
      while (got < length) {
        const n = await conn.read(body.subarray(got));
        if (n === null) throw new Error("The leader closed the connection mid-body");
        got += n;
      }
    }
    this.#head.set(leftover);
    this.#headLen = leftover.length;
    if ((headers.get("connection") ?? "").toLowerCase() === "close") this.#drop();
    return { status, headers, body };
  }

  async #readChunked(conn: Deno.TcpConn, start: Uint8Array): Promise<[Uint8Array, Uint8Array]> {
    // buf[pos, len) is read but not yet decoded; it grows by doubling.
    let buf = new Uint8Array(Math.max(64 * 1024, start.length * 2));
    buf.set(start);
    let len = start.length;
    let pos = 0;
    let body = new Uint8Array(64 * 1024);
    let size = 0;
    const more = async () => {
      if (pos > 0) {
        buf.copyWithin(0, pos, len);
        len -= pos;
        pos = 0;
      }
      if (len === buf.length) {
        const grown = new Uint8Array(buf.length * 2);
        grown.set(buf);
        buf = grown;
      }
      const n = await conn.read(buf.subarray(len));
      if (n === null) throw new Error("The leader closed the connection mid-body");
      len += n;
    };
    const line = async (): Promise<string> => {
      for (let from = pos + 1;;) {
        for (let i = from; i < len; i++) {
          if (buf[i] === 10 && buf[i - 1] === 13) {
            const s = latin1.decode(buf.subarray(pos, i - 1));
            pos = i + 1;
            return s;
          }
        }
        await more();
        from = pos + 1;
      }
    };
    for (;;) {
      const chunk = parseInt((await line()).split(";")[0], 16);
      if (!Number.isSafeInteger(chunk) || chunk < 0) {
        throw new Error("The leader answered a bad chunk size");
      }
      if (chunk === 0) {
        while ((await line()) !== "") {
          // trailers: ignored
        }
        break;
      }
      if (body.length < size + chunk) {
        const grown = new Uint8Array(Math.max(body.length * 2, size + chunk));
        grown.set(body.subarray(0, size));
        body = grown;
      }
      let need = chunk;
      while (need > 0) {
        if (pos === len) await more();
        const take = Math.min(need, len - pos);
        body.set(buf.subarray(pos, pos + take), size);
        size += take;
        pos += take;
        need -= take;
      }
      while (len - pos < 2) await more();
      pos += 2;
    }
    return [body.subarray(0, size), buf.slice(pos, len)];
  }
}

/** A failure before any byte of the response: the kept-alive connection had gone stale. */
class StaleConnection extends Error {
  constructor(readonly inner: unknown) {
    super(String(inner));
  }
}

function unwrap(e: unknown): unknown {
  return e instanceof StaleConnection ? e.inner : e;
}
