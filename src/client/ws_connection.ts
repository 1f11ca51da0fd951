/**
 * The client's WebSocket connection to one broker (`/v1/ws`, frames of
 * src/protocol/ws_frames.ts, described in README.md): requests are pipelined, each answered
 * by the frame carrying its `id`.
 *
 * The API key travels in the subprotocol `rill.auth.<base64url key>` (browsers cannot set
 * headers on a WebSocket). A connection that cannot be opened (a proxy that refuses the
 * upgrade, a broker without the endpoint, bad credentials) rejects {@linkcode WsConnection.open}
 * with {@linkcode WsRefused}; the transport then uses HTTP, which reports what is wrong.
 *
 * Flow control: produce payload bytes unanswered are kept within the window the broker
 * announces in its `hello` answer (`maxInFlightBytes`); a request that would pass it waits.
 *
 * Uses the standard `WebSocket`, so it runs in browsers, Deno and Node 22+. Browsers and Node
 * set TCP_NODELAY on it and send frames whole. Deno's own WebSocket client writes a message
 * longer than 1 KiB as two writes without TCP_NODELAY, and the second then waits ~40 ms for
 * the broker's delayed ACK; so in Deno a frame over 1 KiB goes in parts (ws_frames.ts
 * `frameParts`), which costs a second round trip. At the first such frame, a connection in
 * Deno moves to a socket of the `ws` package (over `node:net`, with TCP_NODELAY; the API key
 * in an `Authorization` header), which sends frames whole: requests wait while it opens and
 * while produce requests sent on the old socket are unanswered, so order is kept; the old
 * socket closes once its last answer is in. A request sent while a long-poll fetch is
 * unanswered moves it too: Deno's socket has Nagle's algorithm on, so that frame would wait
 * ~40 ms for the broker's delayed ACK of the fetch (a client producing while its consumer
 * long-polls on the same connection). Otherwise small frames stay on Deno's socket, whose sends
 * cost the client less CPU (measured: 50 producers of single 100 B records, 52 vs 82 µs per
 * record); where `ws` cannot be loaded, frames go in parts.
 *
 * @module
 */
import { errorFromBody, RillError } from "../protocol/errors.ts";
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  frameParts,
  WS_AUTH_SUBPROTOCOL_PREFIX,
  WS_PART_BYTES,
  WS_PATH,
  WS_SUBPROTOCOL,
} from "../protocol/ws_frames.ts";

/** Opens a socket to `url` offering the rill subprotocol, with an API key if given. */
type SocketOpener = (url: string, auth: string | undefined) => WebSocket;

/** The standard WebSocket: the key goes in a second subprotocol (browsers set no headers). */
const openStandard: SocketOpener = (url, auth) => {
  const protocols = [WS_SUBPROTOCOL];
  if (auth !== undefined) protocols.push(WS_AUTH_SUBPROTOCOL_PREFIX + base64Url(auth));
  return new WebSocket(url, protocols);
};

let nodeOpener: Promise<SocketOpener | null> | undefined;

/** The `ws` package's sockets (TCP_NODELAY), for Deno; null where it cannot be loaded. */
function wsPackageOpener(): Promise<SocketOpener | null> {
  nodeOpener ??= (async () => {
    try {
      // @ts-ignore: the npm build has no declarations for ws (only Deno runs this import)
      // deno-lint-ignore no-import-prefix
      const { WebSocket: NodeSocket } = await import("npm:ws@8.23.0");
      return (url: string, auth: string | undefined) =>
        new NodeSocket(url, [WS_SUBPROTOCOL], {
          perMessageDeflate: false,
          headers: auth === undefined ? {} : { authorization: `Bearer ${auth}` },
        }) as unknown as WebSocket;
    } catch {
      return null;
    }
  })();
  return nodeOpener;
}

/** Opens a socket and waits until it is open. */
async function openSocket(
  open: SocketOpener,
  base: string,
  auth: string | undefined,
): Promise<WebSocket> {
  const url = base.replace(/^http/, "ws") + WS_PATH;
  let socket: WebSocket;
  try {
    socket = open(url, auth);
  } catch (e) {
    throw new WsRefused(`Cannot open ${url}: ${e instanceof Error ? e.message : e}`);
  }
  await new Promise<void>((resolve, reject) => {
    const failed = () => {
      cleanup();
      reject(new WsRefused(`The broker at ${base} refused a WebSocket connection`));
    };
    const opened = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      socket.removeEventListener("open", opened);
      socket.removeEventListener("error", failed);
      socket.removeEventListener("close", failed);
    };
    socket.addEventListener("open", opened);
    socket.addEventListener("error", failed);
    socket.addEventListener("close", failed);
  });
  return socket;
}

/** The WebSocket connection could not be opened (use HTTP instead). */
export class WsRefused extends Error {
  /** @param message why */
  constructor(message: string) {
    super(message);
    this.name = "WsRefused";
  }
}

/** A fetch over the WebSocket connection (README.md, "WebSocket protocol"). */
export interface WsFetchRequest {
  /** the partitions, each from its offset (`maxBytes` default: the broker's, 1 MiB) */
  partitions: { topic: string; partition: number; offset: number; maxBytes?: number }[];
  /** how long the broker waits for `minBytes` (0: answer at once) */
  maxWaitMs?: number;
  /** the bytes over all partitions to wait for (default 1) */
  minBytes?: number;
  /** the most bytes of the answer */
  maxBytes?: number;
  /** an incremental fetch session (KIP-227): `{id: 0, epoch: 0}` opens one */
  session?: { id: number; epoch: number };
}

/** One partition of a fetch answer: its batches and positions, or its error. */
export type WsFetchedPartition =
  | {
    topic: string;
    partition: number;
    /** whole RecordBatch v2 (the first may start before the offset asked) */
    bytes: Uint8Array;
    nextOffset: number;
    highWatermark: number;
    logStartOffset: number;
    error?: undefined;
  }
  | { topic: string; partition: number; error: RillError };

/** A fetch answer. */
export interface WsFetchAnswer {
  /** the session and the epoch to name next, or null */
  session: { id: number; epoch: number } | null;
  /** per partition (with a session: only those with something new) */
  partitions: WsFetchedPartition[];
}

interface Pending {
  resolve: (frame: Frame) => void;
  reject: (e: unknown) => void;
  bytes: number;
  /** the socket it was sent on */
  socket: WebSocket;
}

/** A push subscription (see {@linkcode WsConnection.subscribe}). */
export interface WsSubscription {
  /** grants `n` more pushes */
  grant(n: number): void;
  /** ends the subscription; no push is delivered once it resolves */
  cancel(): Promise<void>;
}

interface SubscriptionState {
  id: number;
  /** the socket it lives on (credit and unsubscribe go there) */
  socket: WebSocket;
  onRecords: (answer: WsFetchAnswer) => void;
  onEnd: (error: RillError) => void;
}

/** A `records` frame as a fetch answer. */
function fetchAnswerOf({ header, payload }: Frame): WsFetchAnswer {
  const parts = header.partitions as Record<string, unknown>[];
  let pos = 0;
  const partitions: WsFetchedPartition[] = parts.map((p) => {
    const topic = String(p.topic);
    const partition = Number(p.partition);
    if (p.error !== undefined) {
      return { topic, partition, error: errorFromBody(500, { error: p.error }) };
    }
    const n = Number(p.bytes);
    const bytes = payload.subarray(pos, pos + n);
    pos += n;
    return {
      topic,
      partition,
      bytes,
      nextOffset: Number(p.nextOffset),
      highWatermark: Number(p.highWatermark),
      logStartOffset: Number(p.logStartOffset),
    };
  });
  return { session: (header.session as WsFetchAnswer["session"]) ?? null, partitions };
}

/**
 * One open connection.
 *
 * @example
 * ```ts
 * const conn = await WsConnection.open("http://127.0.0.1:8092", { auth: "rk_1.s3cr3t" });
 * const { header } = await conn.request({ op: "produce", topic: "t", partition: 0, acks: 1 }, batch);
 * conn.close();
 * ```
 */
export class WsConnection {
  /** where requests go */
  #socket: WebSocket;
  /** Deno's socket after the move to the `ws` package's, until its last answer is in */
  #retired: WebSocket | null = null;
  readonly #pending = new Map<number, Pending>();
  /** push subscriptions by the id of their subscribe frame */
  readonly #subs = new Map<number, SubscriptionState>();
  #nextId = 1;
  #maxInFlightBytes = 8 * 1024 * 1024;
  #inFlightBytes = 0;
  #windowWaiters: (() => void)[] = [];
  #closedError: RillError | null = null;
  readonly #base: string;
  readonly #auth: string | undefined;
  /** whether frames over WS_PART_BYTES go in parts on #socket (Deno's own WebSocket) */
  #inParts: boolean;
  /** whether the move to the `ws` package's socket was tried (it is tried once) */
  #moveTried = false;
  /** long-poll fetches sent and not answered yet */
  #longPolls = 0;
  /** the move to the `ws` package's socket, while it happens; requests wait for it */
  #moving: Promise<void> | null = null;
  /** called once when the connection closes */
  onClose: () => void = () => {};

  private constructor(socket: WebSocket, base: string, auth: string | undefined) {
    this.#socket = socket;
    this.#base = base;
    this.#auth = auth;
    this.#inParts = "Deno" in globalThis;
    this.#attach(socket);
  }

  #attach(socket: WebSocket): void {
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", (e) => this.#message(e.data));
    // A close event follows an error (the `ws` package must have an error listener).
    socket.addEventListener("error", () => {});
    socket.addEventListener("close", (e) => {
      const error = new RillError(
        "BROKER_NOT_AVAILABLE",
        `The WebSocket connection to ${this.#base} closed (${e.code}${
          e.reason ? ` ${e.reason}` : ""
        })`,
      );
      if (socket === this.#socket) {
        this.#fail(error);
        return;
      }
      // The retired socket: what it still carried fails.
      if (socket === this.#retired) this.#retired = null;
      for (const [id, p] of this.#pending) {
        if (p.socket !== socket) continue;
        this.#pending.delete(id);
        this.#settled(p.bytes);
        p.reject(error);
      }
      for (const [id, sub] of this.#subs) {
        if (sub.socket !== socket) continue;
        this.#subs.delete(id);
        sub.onEnd(error);
      }
    });
  }

  /**
   * Opens a connection and says hello.
   *
   * @param base the broker's base URL (`http://` or `https://`)
   * @param opts the API key (`<keyId>.<secret>`), and a client id
   * @returns the connection, once the broker answered its hello
   * @throws {WsRefused} when it cannot be opened
   * @throws {RillError} the broker's refusal of the hello
   */
  static async open(
    base: string,
    opts: { auth?: string; clientId?: string } = {},
  ): Promise<WsConnection> {
    const socket = await openSocket(openStandard, base, opts.auth);
    const conn = new WsConnection(socket, base, opts.auth);
    try {
      const { header } = await conn.request({ op: "hello", clientId: opts.clientId });
      const max = header.maxInFlightBytes;
      if (typeof max === "number" && max > 0) conn.#maxInFlightBytes = max;
    } catch (e) {
      conn.close();
      // Closed before its hello was answered: something between refuses WebSocket.
      if (e instanceof RillError && e.code === "BROKER_NOT_AVAILABLE") {
        throw new WsRefused(`The connection to ${base} closed before the broker said hello`);
      }
      throw e;
    }
    return conn;
  }

  /**
   * Moves to a socket of the `ws` package (see the module comment): opens it, waits until no
   * produce request is unanswered, then sends everything on it. Stays in parts where it
   * cannot be opened.
   */
  async #move(): Promise<void> {
    try {
      const open = await wsPackageOpener();
      if (open === null) return;
      const socket = await openSocket(open, this.#base, this.#auth).catch(() => null);
      if (socket === null) return;
      if (this.#closedError !== null) {
        socket.close(1000);
        return;
      }
      while (this.#closedError === null && this.#inFlightBytes > 0) {
        await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
      }
      if (this.#closedError !== null) {
        socket.close(1000);
        return;
      }
      this.#attach(socket);
      this.#retired = this.#socket;
      this.#socket = socket;
      this.#retireIfIdle();
      this.#inParts = false;
    } finally {
      this.#moving = null;
    }
  }

  /** Closes the retired socket once no answer is awaited on it. */
  #retireIfIdle(): void {
    const retired = this.#retired;
    if (retired === null) return;
    for (const p of this.#pending.values()) if (p.socket === retired) return;
    for (const sub of this.#subs.values()) if (sub.socket === retired) return;
    this.#retired = null;
    try {
      retired.close(1000);
    } catch {
      // closing already
    }
  }

  /** The broker's base URL. */
  get base(): string {
    return this.#base;
  }

  /** Whether the connection can still carry requests. */
  get open(): boolean {
    return this.#closedError === null;
  }

  /**
   * Whether frames over 1 KiB go in parts (Deno's own WebSocket, before the move to the `ws`
   * package's socket, or where that cannot be opened).
   */
  get inParts(): boolean {
    return this.#inParts;
  }

  /** Requests sent and not answered yet. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Sends a request and waits for its answer. A produce payload waits first until it fits
   * in the in-flight window.
   *
   * @param header the header (its `id` is set here)
   * @param payload the payload, if any
   * @returns the answer frame
   * @throws {RillError} the broker's error answer; BROKER_NOT_AVAILABLE (retriable) when the
   *   connection closes first
   */
  async request(header: Record<string, unknown>, payload?: Uint8Array): Promise<Frame> {
    const bytes = payload?.byteLength ?? 0;
    const longPoll = header.op === "fetch" && Number(header.maxWaitMs) > 0;
    // Deno's socket has Nagle on: a frame sent while a long poll is unanswered waits ~40 ms
    // for the broker's delayed ACK (a client producing while its consumer long-polls), so
    // that too moves the connection to the `ws` package's socket (TCP_NODELAY).
    if (
      this.#inParts && !this.#moveTried &&
      (bytes + 256 > WS_PART_BYTES || (!longPoll && this.#longPolls > 0))
    ) {
      this.#moveTried = true;
      this.#moving = this.#move();
    }
    while (this.#moving !== null) await this.#moving;
    while (
      this.#closedError === null && this.#inFlightBytes > 0 &&
      this.#inFlightBytes + bytes > this.#maxInFlightBytes
    ) {
      await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
    }
    if (this.#closedError !== null) throw this.#closedError;
    if (!longPoll) return this.#sendOn(this.#socket, header, payload);
    this.#longPolls++;
    try {
      return await this.#sendOn(this.#socket, header, payload);
    } finally {
      this.#longPolls--;
    }
  }

  /**
   * Sends a request on `socket` and waits for its answer; with `sub`, the `records` frames
   * carrying its id go to that subscription.
   */
  #sendOn(
    socket: WebSocket,
    header: Record<string, unknown>,
    payload?: Uint8Array,
    sub?: SubscriptionState,
  ): Promise<Frame> {
    if (this.#closedError !== null) return Promise.reject(this.#closedError);
    const bytes = payload?.byteLength ?? 0;
    const id = this.#nextId++;
    header.id = id;
    this.#inFlightBytes += bytes;
    if (sub !== undefined) {
      sub.id = id;
      this.#subs.set(id, sub);
    }
    const answer = new Promise<Frame>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, bytes, socket });
    });
    const frame = encodeFrame(header, payload === undefined ? [] : [payload]);
    try {
      if (socket === this.#socket && this.#inParts && frame.byteLength > WS_PART_BYTES) {
        for (const part of frameParts(frame)) socket.send(part);
      } else {
        socket.send(frame);
      }
    } catch (e) {
      // The socket is closing: fail as a closed connection does.
      this.#fail(
        new RillError(
          "BROKER_NOT_AVAILABLE",
          `The WebSocket connection to ${this.#base} failed: ${e instanceof Error ? e.message : e}`,
        ),
      );
    }
    return answer;
  }

  /**
   * Fetches many partitions in one request (the broker's fetch-session core): answered once
   * `minBytes` over all partitions are there, or after `maxWaitMs`.
   *
   * @param req the partitions and the wait
   * @returns per partition its batches and positions, or its error; the session to name next
   * @throws {RillError} an error of the whole request (bad request, authorization, session)
   */
  async fetch(req: WsFetchRequest): Promise<WsFetchAnswer> {
    return fetchAnswerOf(await this.request({ op: "fetch", ...req }));
  }

  /**
   * Subscribes to partitions (docs/http-api.md, "Push subscriptions"): the broker sends their records as
   * they come, each push once the client granted credit for it, advancing each partition past
   * what it sent. `onRecords` gets each push; `onEnd` gets the error that ended the
   * subscription (the connection closed, or an error of the whole read).
   *
   * @param req the partitions, each from its offset; `credit`: the pushes granted up front
   *   (default 1); `maxBytes`: the most bytes of one push
   * @param onRecords called with each push (per partition its batches, or its error, after
   *   which the partition leaves the subscription); the first may come before the returned
   *   promise resolves
   * @param onEnd called once if the subscription ends other than by `cancel`
   * @returns the subscription: `grant(n)` grants n more pushes; `cancel()` ends it
   * @throws {RillError} the broker's refusal (bad request, authorization, too many waiting)
   */
  async subscribe(
    req: {
      partitions: WsFetchRequest["partitions"];
      credit?: number;
      maxBytes?: number;
    },
    onRecords: (answer: WsFetchAnswer) => void,
    onEnd: (error: RillError) => void = () => {},
  ): Promise<WsSubscription> {
    while (this.#moving !== null) await this.#moving;
    const socket = this.#socket;
    const state: SubscriptionState = { id: -1, socket, onRecords, onEnd };
    await this.#sendOn(socket, { op: "subscribe", ...req }, undefined, state);
    return {
      grant: (n: number) => {
        if (this.#subs.get(state.id) !== state || this.#closedError !== null) return;
        try {
          socket.send(
            encodeFrame({ op: "credit", id: this.#nextId++, subscription: state.id, n }),
          );
        } catch {
          // closing: onEnd follows
        }
      },
      cancel: async () => {
        if (this.#subs.get(state.id) !== state) return;
        this.#subs.delete(state.id);
        try {
          await this.#sendOn(socket, { op: "unsubscribe", subscription: state.id });
        } catch {
          // closed: nothing more comes anyway
        }
        this.#retireIfIdle();
      },
    };
  }

  /** Closes the connection; requests still pending fail with BROKER_NOT_AVAILABLE. */
  close(): void {
    this.#fail(new RillError("BROKER_NOT_AVAILABLE", `The connection to ${this.#base} was closed`));
    for (const socket of [this.#socket, this.#retired]) {
      try {
        socket?.close(1000);
      } catch {
        // closing already
      }
    }
    this.#retired = null;
  }

  #message(data: unknown): void {
    if (!(data instanceof ArrayBuffer)) return;
    let frame: Frame;
    try {
      frame = decodeFrame(new Uint8Array(data));
    } catch {
      return;
    }
    const id = frame.header.id;
    if (typeof id !== "number") {
      // An error about no request in particular (a frame the broker could not read).
      if (frame.header.op === "error") {
        this.#fail(errorOf(frame.header));
        try {
          this.#socket.close(1000);
        } catch { /* closing */ }
      }
      return;
    }
    if (frame.header.op === "records") {
      const sub = this.#subs.get(id);
      if (sub !== undefined) {
        sub.onRecords(fetchAnswerOf(frame));
        return;
      }
    }
    const pending = this.#pending.get(id);
    if (pending === undefined) {
      // An error ending a subscription.
      const sub = this.#subs.get(id);
      if (sub !== undefined && frame.header.op === "error") {
        this.#subs.delete(id);
        sub.onEnd(errorOf(frame.header));
        this.#retireIfIdle();
      }
      return;
    }
    this.#pending.delete(id);
    this.#settled(pending.bytes);
    if (this.#retired !== null && pending.socket === this.#retired) this.#retireIfIdle();
    if (frame.header.op === "error") {
      // A refused subscribe frame: no subscription.
      this.#subs.delete(id);
      pending.reject(errorOf(frame.header));
    } else pending.resolve(frame);
  }

  #settled(bytes: number): void {
    if (bytes === 0) return;
    this.#inFlightBytes -= bytes;
    const waiters = this.#windowWaiters;
    this.#windowWaiters = [];
    for (const w of waiters) w();
  }

  #fail(e: RillError): void {
    if (this.#closedError !== null) return;
    this.#closedError = e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    const subs = [...this.#subs.values()];
    this.#subs.clear();
    for (const sub of subs) sub.onEnd(e);
    this.#inFlightBytes = 0;
    for (const w of this.#windowWaiters.splice(0)) w();
    this.onClose();
  }
}

function errorOf(header: Record<string, unknown>): RillError {
  return errorFromBody(500, header);
}

function base64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
