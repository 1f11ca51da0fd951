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
 * In Deno the connection is a `TcpWebSocket` (tcp_websocket.ts, opened by ws_link.ts: RFC 6455 over
 * `Deno.connect` with TCP_NODELAY, the API key in an `Authorization` header): Deno's own
 * WebSocket client has Nagle's algorithm on and writes a message over 1 KiB in two writes, so
 * such a frame, or one sent while a long-poll fetch is unanswered, would wait ~40 ms for the
 * broker's delayed ACK. Elsewhere (browsers, Node 22+) it is the standard `WebSocket`, which
 * sets TCP_NODELAY and sends frames whole.
 *
 * @module
 */
import { errorFromBody, RillError } from "../protocol/errors.ts";
import {
  decodeFrame,
  type Frame,
  FrameParts,
  WS_PART_LAST,
  WS_PART_MORE,
} from "../protocol/ws_frames.ts";
import {
  decodeProducedFrame,
  encodeProduceFrame,
  type ProducedOffsets,
  startsWith,
  topicBytesOf,
  WS_BINARY_PRODUCE,
  WS_PRODUCED,
} from "../protocol/ws_produce_frames.ts";
import {
  decodeRecordsFrame,
  type RecordsFrame,
  WS_BINARY_RECORDS,
  WS_RECORDS,
} from "../protocol/ws_records_frames.ts";
import { type Link, type LinkEvents, openLink, WsRefused } from "./ws_link.ts";
import { SendMarks, stopSweeping, sweepEvery, type Swept } from "./request_deadlines.ts";
import { PendingRequests } from "./pending_requests.ts";

export { WsRefused } from "./ws_link.ts";

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
  /** a long poll's `maxWaitMs`, which the request timeout allows for (absent: 0) */
  wait?: number;
  /**
   * the answer: the frame for {@linkcode WsConnection.request}; for
   * {@linkcode WsConnection.produce} its offsets (from a `produced` frame of either kind), or
   * null with acks=0
   */
  resolve: (answer: Frame | ProducedOffsets | null) => void;
  reject: (e: unknown) => void;
  bytes: number;
  /** a {@linkcode WsConnection.produce}: resolved with the offsets, not the frame */
  produce: boolean;
}

/**
 * Where {@linkcode WsConnection.produceDirect} sends a produce's outcome: the producer's own
 * object for the batch, kept as the request's pending entry (no promise, closure or entry
 * object per request).
 */
export interface WsProduceTarget {
  /** the payload bytes counted in flight (set by the connection) */
  bytes: number;
  /** true: answered with the produce's offsets, not the frame */
  readonly produce: true;
  /** the offsets the broker gave, or null with acks=0 */
  resolve(offsets: ProducedOffsets | null): void;
  /** the broker's error, or BROKER_NOT_AVAILABLE when the connection closed first */
  reject(error: unknown): void;
}

/** The offsets of a JSON `produced` answer (null when it has none: acks=0). */
function offsetsOf(header: Record<string, unknown>): ProducedOffsets | null {
  if (header.baseOffset === undefined) return null;
  return {
    partition: header.partition as number,
    baseOffset: header.baseOffset as number,
    lastOffset: header.lastOffset as number,
    recordCount: header.recordCount as number,
    logAppendTime: header.logAppendTime as number,
  };
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
  /** where requests go (set once open) */
  #link!: Link;
  readonly #pending = new PendingRequests<Pending>();
  /** push subscriptions by the id of their subscribe frame */
  readonly #subs = new Map<number, SubscriptionState>();
  #nextId = 1;
  #maxInFlightBytes = 8 * 1024 * 1024;
  #inFlightBytes = 0;
  #windowWaiters: (() => void)[] = [];
  #closedError: RillError | null = null;
  /** whether the broker takes binary produce frames (its hello answer said so) */
  #binaryProduce = false;
  /** whether the broker answers `offsets` requests (its hello answer lists them) */
  #offsets = false;
  /** whether the broker takes push subscriptions (its hello answer lists `subscribe`) */
  #subscriptions = false;
  /** the parts of a long answer so far */
  readonly #frameParts = new FrameParts();
  readonly #base: string;
  /** the request timeout, and which requests were sent before which sweep */
  readonly #timeoutMs: number | undefined;
  readonly #marks: SendMarks | null;
  readonly #swept: Swept = { sweep: (now) => this.#sweep(now) };
  /** called once when the connection closes */
  onClose: () => void = () => {};

  private constructor(base: string, timeoutMs: number | undefined) {
    this.#base = base;
    this.#timeoutMs = timeoutMs;
    this.#marks = timeoutMs === undefined ? null : new SendMarks(timeoutMs);
  }

  /** The sweep (request_deadlines.ts): a request unanswered past its time ends the connection. */
  #sweep(now: number): void {
    if (this.#marks!.overdue(this.#nextId, now, this.#pending) === undefined) return;
    this.#fail(
      new RillError(
        "REQUEST_TIMED_OUT",
        `The broker at ${this.#base} did not answer a request within ${this.#timeoutMs} ms (requestTimeoutMs); its connection is closed`,
      ),
    );
    try {
      this.#link.close();
    } catch {
      // closing already
    }
  }

  /** The link's events: each message read, and its close. */
  #events(): LinkEvents {
    return {
      onMessage: (message, owned) => this.#message(message, owned),
      // A part of a long answer is copied into its frame (FrameParts).
      copies: (head) => {
        const marker = (head[0] << 24 | head[1] << 16 | head[2] << 8 | head[3]) >>> 0;
        return marker === WS_PART_MORE || marker === WS_PART_LAST;
      },
      onClose: (code, reason) =>
        this.#fail(
          new RillError(
            "BROKER_NOT_AVAILABLE",
            `The WebSocket connection to ${this.#base} closed (${code}${
              reason ? ` ${reason}` : ""
            })`,
          ),
        ),
    };
  }

  /**
   * Opens a connection and says hello.
   *
   * @param base the broker's base URL (`http://` or `https://`)
   * @param opts the API key (`<keyId>.<secret>`), a client id, and the request timeout (the
   *   opening, the hello and each request then fail with REQUEST_TIMED_OUT past it)
   * @returns the connection, once the broker answered its hello
   * @throws {WsRefused} when it cannot be opened
   * @throws {RillError} the broker's refusal of the hello; REQUEST_TIMED_OUT
   */
  static async open(
    base: string,
    opts: { auth?: string; clientId?: string; requestTimeoutMs?: number } = {},
  ): Promise<WsConnection> {
    const timeoutMs = opts.requestTimeoutMs;
    const conn = new WsConnection(base, timeoutMs);
    conn.#link = await openLink(base, opts.auth, conn.#events(), timeoutMs);
    if (timeoutMs !== undefined && conn.#closedError === null) sweepEvery(conn.#swept, timeoutMs);
    try {
      // "parts": long answers may come in parts (ws_frames.ts WS_ANSWER_PART_BYTES);
      // "binary": pushes may come as binary records frames (ws_records_frames.ts).
      const { header } = await conn.request({
        op: "hello",
        clientId: opts.clientId,
        parts: true,
        binary: [WS_BINARY_RECORDS],
      });
      const max = header.maxInFlightBytes;
      if (typeof max === "number" && max > 0) conn.#maxInFlightBytes = max;
      conn.#binaryProduce = Array.isArray(header.binary) &&
        header.binary.includes(WS_BINARY_PRODUCE);
      conn.#offsets = Array.isArray(header.ops) && header.ops.includes("offsets");
      conn.#subscriptions = Array.isArray(header.ops) && header.ops.includes("subscribe") &&
        header.ops.includes("credit");
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

  /** The broker's base URL. */
  get base(): string {
    return this.#base;
  }

  /** Whether the connection can still carry requests. */
  get open(): boolean {
    return this.#closedError === null;
  }

  /** Whether produce requests go as binary frames (the broker said it takes them). */
  get binaryProduce(): boolean {
    return this.#binaryProduce;
  }

  /** Whether the broker looks offsets up over the connection (its hello answer said so). */
  get offsets(): boolean {
    return this.#offsets;
  }

  /** Whether the broker takes push subscriptions (its hello answer lists `subscribe`). */
  get subscriptions(): boolean {
    return this.#subscriptions;
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
  request(header: Record<string, unknown>, payload?: Uint8Array): Promise<Frame> {
    const bytes = payload?.byteLength ?? 0;
    if (
      this.#closedError === null && this.#inFlightBytes > 0 &&
      this.#inFlightBytes + bytes > this.#maxInFlightBytes
    ) return this.#whenRoom(bytes, () => this.#send(header, payload));
    return this.#send(header, payload);
  }

  /**
   * Produces RecordBatch v2 bytes to a partition: as a binary produce frame when the broker
   * takes them (its hello answer said so), else as a JSON one. The payload waits first until
   * it fits in the in-flight window.
   *
   * @param topic the topic
   * @param partition the partition
   * @param acks -1 (all), 1 or 0
   * @param batch the batches
   * @param onError what the answer becomes instead of a rejection when the produce fails
   *   (the transport's retry on another route), without a promise more per request
   * @returns the offsets the broker gave them, or null with acks=0
   * @throws {RillError} the broker's error answer; BROKER_NOT_AVAILABLE (retriable) when the
   *   connection closes first
   */
  produce<T = never>(
    topic: string,
    partition: number,
    acks: -1 | 0 | 1,
    batch: Uint8Array,
    onError?: (e: unknown) => Promise<T>,
  ): Promise<ProducedOffsets | null | T> {
    if (
      this.#closedError === null && this.#inFlightBytes > 0 &&
      this.#inFlightBytes + batch.byteLength > this.#maxInFlightBytes
    ) {
      const later = this.#whenRoom(
        batch.byteLength,
        () => this.#produce(topic, partition, acks, batch),
      );
      return onError === undefined ? later : later.then(undefined, onError);
    }
    return this.#produce(topic, partition, acks, batch, onError);
  }

  /**
   * {@linkcode produce} for the producer's common case, without a promise: a binary produce
   * frame sent at once, its outcome given to `target` (which is kept as the request's
   * pending entry). `reject` may be called before this returns (the socket failed as the
   * frame was written).
   *
   * @param topic the topic
   * @param partition the partition
   * @param acks -1 (all), 1 or 0
   * @param batch the batches
   * @param target where the offsets or the error go
   * @returns false, with nothing sent, when the connection is closed, the broker takes no
   *   binary produce frames, the topic name cannot go in one, or the batch does not fit in
   *   the in-flight window now: use {@linkcode produce}
   */
  produceDirect(
    topic: string,
    partition: number,
    acks: -1 | 0 | 1,
    batch: Uint8Array,
    target: WsProduceTarget,
  ): boolean {
    const bytes = batch.byteLength;
    if (
      this.#closedError !== null || !this.#binaryProduce ||
      (this.#inFlightBytes > 0 && this.#inFlightBytes + bytes > this.#maxInFlightBytes)
    ) return false;
    const name = topicBytesOf(topic);
    if (name === null) return false;
    const id = this.#nextId++;
    target.bytes = bytes;
    this.#inFlightBytes += bytes;
    this.#pending.set(id, target as unknown as Pending);
    try {
      const link = this.#link;
      link.sendAllocated(encodeProduceFrame(id, name, partition, acks, batch, link.alloc));
    } catch (e) {
      this.#sendFailed(e);
    }
    return true;
  }

  /** Sends `send`'s request once `bytes` more fit in the in-flight window. */
  async #whenRoom<T>(bytes: number, send: () => Promise<T>): Promise<T> {
    while (
      this.#closedError === null && this.#inFlightBytes > 0 &&
      this.#inFlightBytes + bytes > this.#maxInFlightBytes
    ) {
      await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
    }
    return await send();
  }

  #produce<T = never>(
    topic: string,
    partition: number,
    acks: -1 | 0 | 1,
    batch: Uint8Array,
    onError?: (e: unknown) => Promise<T>,
  ): Promise<ProducedOffsets | null | T> {
    if (this.#closedError !== null) {
      return onError === undefined ? Promise.reject(this.#closedError) : onError(this.#closedError);
    }
    // A topic name a binary frame cannot carry goes in JSON, which the broker refuses clearly.
    const name = this.#binaryProduce ? topicBytesOf(topic) : null;
    if (name === null) {
      const json = this.#send({ op: "produce", topic, partition, acks }, batch, undefined, true);
      return onError === undefined ? json : json.then(undefined, onError);
    }
    const id = this.#nextId++;
    const bytes = batch.byteLength;
    this.#inFlightBytes += bytes;
    const answer = new Promise<ProducedOffsets | null | T>((resolve, reject) => {
      this.#pending.set(id, {
        resolve: resolve as Pending["resolve"],
        // A failure resolves with what onError makes of it (a promise is adopted).
        reject: onError === undefined ? reject : (e) => resolve(onError(e)),
        bytes,
        produce: true,
      });
    });
    try {
      const link = this.#link;
      link.sendAllocated(encodeProduceFrame(id, name, partition, acks, batch, link.alloc));
    } catch (e) {
      this.#sendFailed(e);
    }
    return answer;
  }

  /** A send threw: the socket is closing, so fail as a closed connection does. */
  #sendFailed(e: unknown): void {
    this.#fail(
      new RillError(
        "BROKER_NOT_AVAILABLE",
        `The WebSocket connection to ${this.#base} failed: ${e instanceof Error ? e.message : e}`,
      ),
    );
  }

  /**
   * Sends a request and waits for its answer; with `sub`, the `records` frames carrying its id
   * go to that subscription.
   */
  #send(
    header: Record<string, unknown>,
    payload?: Uint8Array,
    sub?: SubscriptionState,
  ): Promise<Frame>;
  #send(
    header: Record<string, unknown>,
    payload: Uint8Array,
    sub: undefined,
    produce: true,
  ): Promise<ProducedOffsets | null>;
  #send(
    header: Record<string, unknown>,
    payload?: Uint8Array,
    sub?: SubscriptionState,
    produce = false,
  ): Promise<Frame | ProducedOffsets | null> {
    if (this.#closedError !== null) return Promise.reject(this.#closedError);
    const bytes = payload?.byteLength ?? 0;
    const id = this.#nextId++;
    header.id = id;
    this.#inFlightBytes += bytes;
    if (sub !== undefined) {
      sub.id = id;
      this.#subs.set(id, sub);
    }
    const wait = typeof header.maxWaitMs === "number" ? header.maxWaitMs : 0;
    const answer = new Promise<Frame | ProducedOffsets | null>((resolve, reject) => {
      this.#pending.set(id, { wait, resolve, reject, bytes, produce });
    });
    try {
      this.#link.send(header, payload);
    } catch (e) {
      this.#sendFailed(e);
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
    const state: SubscriptionState = { id: -1, onRecords, onEnd };
    await this.#send({ op: "subscribe", ...req }, undefined, state);
    return {
      grant: (n: number) => {
        if (this.#subs.get(state.id) !== state || this.#closedError !== null) return;
        try {
          this.#link.send({ op: "credit", id: this.#nextId++, subscription: state.id, n });
        } catch {
          // closing: onEnd follows
        }
      },
      cancel: async () => {
        if (this.#subs.get(state.id) !== state) return;
        this.#subs.delete(state.id);
        try {
          await this.#send({ op: "unsubscribe", subscription: state.id });
        } catch {
          // closed: nothing more comes anyway
        }
      },
    };
  }

  /** Closes the connection; requests still pending fail with BROKER_NOT_AVAILABLE. */
  close(): void {
    this.#fail(new RillError("BROKER_NOT_AVAILABLE", `The connection to ${this.#base} was closed`));
    try {
      this.#link?.close();
    } catch {
      // closing already
    }
  }

  #message(message: Uint8Array, owned: boolean): void {
    if (message[0] === 0xff && !startsWith(message, WS_PRODUCED)) {
      // A part of a long answer: the frame once its last part came.
      const whole = this.#frameParts.take(message);
      if (whole === null) return;
      if (whole !== message) {
        message = whole;
        owned = true;
      }
    }
    if (startsWith(message, WS_PRODUCED)) {
      let answer: ReturnType<typeof decodeProducedFrame>;
      try {
        answer = decodeProducedFrame(message);
      } catch {
        return;
      }
      const pending = this.#pending.get(answer.id);
      if (pending === undefined) return;
      this.#pending.delete(answer.id);
      this.#settled(pending.bytes);
      pending.resolve(answer.offsets);
      return;
    }
    if (startsWith(message, WS_RECORDS)) return this.#records(message, owned);
    let frame: Frame;
    try {
      frame = decodeFrame(message);
    } catch {
      return;
    }
    // A view into the link's read buffer: what is kept (records) is copied out.
    if (!owned && frame.payload.byteLength > 0) {
      frame = { header: frame.header, payload: frame.payload.slice() };
    }
    const id = frame.header.id;
    if (typeof id !== "number") {
      // An error about no request in particular (a frame the broker could not read).
      if (frame.header.op === "error") {
        this.#fail(errorOf(frame.header));
        try {
          this.#link.close();
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
      }
      return;
    }
    this.#pending.delete(id);
    this.#settled(pending.bytes);
    if (frame.header.op === "error") {
      // A refused subscribe frame: no subscription.
      this.#subs.delete(id);
      pending.reject(errorOf(frame.header));
    } else pending.resolve(pending.produce ? offsetsOf(frame.header) : frame);
  }

  /**
   * A binary records push (ws_records_frames.ts) to its subscription; its batches are copied
   * out of a message that is a view. One that cannot be read ends the connection, as a frame
   * the broker could not read does: the pushes that follow could not be trusted either.
   */
  #records(message: Uint8Array, owned: boolean): void {
    let push: RecordsFrame;
    try {
      push = decodeRecordsFrame(message, !owned);
    } catch (e) {
      this.#fail(
        new RillError(
          "UNKNOWN_SERVER_ERROR",
          `The broker at ${this.#base} sent a push that cannot be read: ${(e as Error).message}`,
        ),
      );
      try {
        this.#link.close();
      } catch { /* closing */ }
      return;
    }
    this.#subs.get(push.id)?.onRecords({ session: null, partitions: push.partitions });
  }

  #settled(bytes: number): void {
    if (bytes === 0) return;
    this.#inFlightBytes -= bytes;
    if (this.#windowWaiters.length === 0) return;
    const waiters = this.#windowWaiters;
    this.#windowWaiters = [];
    for (const w of waiters) w();
  }

  #fail(e: RillError): void {
    if (this.#closedError !== null) return;
    this.#closedError = e;
    if (this.#marks !== null) stopSweeping(this.#swept);
    for (const p of this.#pending.takeAll()) p.reject(e);
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
