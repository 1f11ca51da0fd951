/**
 * One WebSocket connection of the broker's endpoint (endpoint.ts): decodes frames
 * (src/protocol/ws_frames.ts, and the binary produce frames of ws_produce_frames.ts), checks them as the HTTP routes check their requests (the
 * same parameter checks, ACLs, quotas and error codes), calls the broker, and answers.
 *
 * Requests are handled as they arrive and answered as they complete (pipelined), each answer
 * carrying its request's `id`. Flow control per connection:
 *
 * - produce: the payload bytes of unanswered produce requests are bounded by
 *   `maxInFlightBytes`; a request past it is answered THROTTLING_QUOTA_EXCEEDED at once
 *   (retriable) and not held. A well-behaved client keeps within the window it is told in
 *   the `hello` answer;
 * - fetch: a fetch is started only while the bytes queued on the socket are below
 *   `maxUnsentBytes`; past it, fetches wait for the socket to drain, so a client that does
 *   not read cannot make the broker buffer more than about that per connection;
 * - push subscriptions (subscription.ts): each push spends a credit the client granted, and
 *   waits for the socket to drain as fetch answers do.
 *
 * @module
 */
import type { Broker, OffsetSpec } from "../broker/broker.ts";
import type { FetchPartitionRequest } from "../broker/fetch_session.ts";
import type { Acks, BatchAppendResult } from "../broker/produce.ts";
import { validateTopicName } from "../coordination/topics.ts";
import type { Operation } from "../coordination/acls.ts";
import { RillError } from "../protocol/errors.ts";
import { concatBytes } from "../protocol/bytes.ts";
import {
  decodeFrame,
  encodeAsciiFrame,
  encodeFrame,
  encodeJsonFrame,
  WS_ANSWER_PART_BYTES,
  WS_PART_LAST,
  WS_PART_MORE,
} from "../protocol/ws_frames.ts";
import {
  decodeProduceFrame,
  encodeProducedFrame,
  type ProduceFrame,
  ProduceFrameError,
  WS_BINARY_PRODUCE,
  WS_PRODUCE,
} from "../protocol/ws_produce_frames.ts";
import { WS_BINARY_RECORDS } from "../protocol/ws_records_frames.ts";
import type { Principal } from "../http/auth.ts";
import type { InstalledSecurity } from "../http/security.ts";
import type { WsLimits } from "./endpoint.ts";
import type { WsMeter, WsRoute } from "./observe.ts";
import { Subscription } from "./subscription.ts";
import { recordsAnswerJson, recordsPushFrame } from "./records_answer.ts";
import { acksOf, intField } from "./frame_fields.ts";
import { lendScratch, partBuffer, producedAnswer } from "./answer_buffers.ts";

const EMPTY = new Uint8Array(0);
/** The requests a connection takes (told in the hello answer's `ops`). */
const WS_OPS = ["hello", "produce", "fetch", "subscribe", "credit", "unsubscribe", "offsets"];
/**
 * Fetches a connection may have waiting at once (a consumer long-polls each partition it
 * reads from a broker).
 */
const MAX_FETCHES = 64;
/** Partitions one fetch may name. */
const MAX_FETCH_PARTITIONS = 1000;
/** The most credit a subscription may be granted at once. */
const MAX_CREDIT = 1024;

const FAILED_CODE = {
  topic: "TOPIC_AUTHORIZATION_FAILED",
  group: "GROUP_AUTHORIZATION_FAILED",
  cluster: "CLUSTER_AUTHORIZATION_FAILED",
} as const;

/** The state of one connection. */
export class WsSession {
  readonly #broker: Broker;
  readonly #installed: InstalledSecurity;
  readonly #limits: WsLimits;
  readonly #socket: WebSocket;
  readonly #meter: WsMeter | null;
  #principal: Principal | null;
  /** a hello being authenticated: frames that arrive meanwhile wait for it, in order */
  #gate: Promise<void> | null = null;
  #inFlightBytes = 0;
  /** the topic name of the last produce frame, checked by validateTopicName */
  #lastTopic: string | null = null;
  /** whether the client takes long answers in parts (its hello said so) */
  #answerParts = false;
  /** whether the client takes binary `records` pushes (its hello's `binary` lists them) */
  #binaryRecords = false;
  #closed = false;
  /** fetches started and not answered, and subscriptions (each counts as one) */
  #fetches = 0;
  /** push subscriptions by the id of their `subscribe` frame (subscription.ts) */
  readonly #subs = new Map<number, Subscription>();
  /** ends the waits of this connection's fetches when it closes (made at its first fetch) */
  #abort: AbortController | null = null;
  /** the last fetch answer queued to go out */
  #answers: Promise<void> = Promise.resolve();
  /** fetch answers queued behind #answers, not yet sent */
  #answersWaiting = 0;
  /** the parts of a frame sent in parts, so far */
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  /** fetches waiting for the socket to drain */
  #drainWaiters: (() => void)[] = [];
  #drainTimer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param broker the broker
   * @param installed the security state
   * @param limits the connection's limits
   * @param socket the upgraded socket
   * @param principal who authenticated in the handshake, or null until a `hello` does
   * @param meter counts each frame into the broker's metrics (observe.ts)
   */
  constructor(
    broker: Broker,
    installed: InstalledSecurity,
    limits: WsLimits,
    socket: WebSocket,
    principal: Principal | null,
    meter: WsMeter | null = null,
  ) {
    this.#broker = broker;
    this.#meter = meter;
    this.#installed = installed;
    this.#limits = limits;
    this.#socket = socket;
    this.#principal = principal;
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", (e) => this.#message(e.data));
  }

  /** Called once the socket closed: pending answers are dropped, waits end. */
  closed(): void {
    this.#closed = true;
    this.#abort?.abort();
    for (const sub of this.#subs.values()) sub.end();
    if (this.#drainTimer !== undefined) clearInterval(this.#drainTimer);
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  #message(data: unknown): void {
    const start = performance.now();
    if (!(data instanceof ArrayBuffer)) {
      const err = new RillError("INVALID_REQUEST", "Frames are binary messages, not text");
      this.#meter?.answered("invalid", start, this.#error(null, err));
      return;
    }
    let message: Uint8Array = new Uint8Array(data);
    // A JSON frame starts with its header's length; the u32 markers of parts and of binary
    // frames start with 0xFF, which no header length can.
    if (message.byteLength >= 4 && message[0] === 0xff) {
      let marker = (0xff000000 | message[1] << 16 | message[2] << 8 | message[3]) >>> 0;
      if (marker === WS_PART_MORE || marker === WS_PART_LAST) {
        const joined = this.#part(message, marker === WS_PART_LAST);
        if (joined === null) return;
        message = joined;
        marker = message.byteLength >= 4
          ? (message[0] << 24 | message[1] << 16 | message[2] << 8 | message[3]) >>> 0
          : 0;
      }
      if (marker === WS_PRODUCE) {
        if (this.#gate !== null) {
          const m = message;
          this.#gate.then(() => this.#binaryProduce(m, start));
          return;
        }
        return this.#binaryProduce(message, start);
      }
    }
    let header: Record<string, unknown>;
    let payload: Uint8Array;
    try {
      ({ header, payload } = decodeFrame(message));
    } catch (e) {
      const err = new RillError("INVALID_REQUEST", (e as Error).message);
      this.#meter?.answered("invalid", start, this.#error(null, err));
      return;
    }
    if (this.#gate !== null) {
      this.#gate.then(() => this.#dispatch(header, payload, start));
      return;
    }
    this.#dispatch(header, payload, start);
  }

  /**
   * Takes a part of a frame sent in parts (ws_frames.ts): answers a part that more follow
   * with an empty message; returns the whole frame with the last part.
   */
  #part(message: Uint8Array, last: boolean): Uint8Array | null {
    const data = message.subarray(4);
    this.#partBytes += data.byteLength;
    if (this.#partBytes > this.#broker.config.maxRequestBytes + 65536) {
      this.#parts = [];
      this.#partBytes = 0;
      this.#error(
        null,
        new RillError(
          "RECORD_LIST_TOO_LARGE",
          "A frame sent in parts is larger than the request limit",
        ),
      );
      this.#socket.close(1009, "frame too large");
      return null;
    }
    this.#parts.push(data);
    if (!last) {
      if (this.#socket.readyState === WebSocket.OPEN) this.#socket.send(EMPTY);
      return null;
    }
    const frame = concatBytes(this.#parts, this.#partBytes);
    this.#parts = [];
    this.#partBytes = 0;
    return frame;
  }

  #dispatch(header: Record<string, unknown>, payload: Uint8Array, start: number): void {
    const id = header.id;
    const op = header.op;
    const route: WsRoute = op === "hello" || op === "produce" || op === "fetch" ||
        op === "subscribe" || op === "credit" || op === "unsubscribe" || op === "offsets"
      ? op
      : "unknown";
    // Called once the frame is answered (null: with success).
    const done = (err: RillError | null) => this.#meter?.answered(route, start, err, header.acks);
    if (!Number.isSafeInteger(id)) {
      done(this.#error(null, new RillError("INVALID_REQUEST", 'A request needs an integer "id"')));
      return;
    }
    try {
      switch (op) {
        case "hello":
          return this.#hello(id as number, header, done);
        case "produce":
          return this.#produce(id as number, header, payload, done);
        case "fetch":
          return this.#fetch(id as number, header, done);
        case "subscribe":
          return this.#subscribe(id as number, header, done);
        case "credit":
        case "unsubscribe":
          return this.#subscription(id as number, op, header, done);
        case "offsets":
          return this.#offsets(id as number, header, done);
        default:
          throw new RillError(
            "INVALID_REQUEST",
            `Unknown op "${String(header.op).slice(0, 50)}"; known: ${WS_OPS.join(", ")}`,
          );
      }
    } catch (e) {
      done(this.#error(id as number, e));
    }
  }

  #hello(id: number, header: Record<string, unknown>, done: Done): void {
    this.#answerParts = header.parts === true;
    this.#binaryRecords = Array.isArray(header.binary) &&
      header.binary.includes(WS_BINARY_RECORDS);
    const answer = () => {
      done(null);
      this.#send({
        op: "hello",
        id,
        brokerId: this.#broker.id,
        maxInFlightBytes: this.#limits.maxInFlightBytes,
        maxUnsentBytes: this.#limits.maxUnsentBytes,
        binary: [WS_BINARY_PRODUCE, WS_BINARY_RECORDS],
        ops: WS_OPS,
      });
    };
    const { security } = this.#installed;
    if (!security.auth || header.auth === undefined) {
      if (security.auth && this.#principal === null) {
        throw new RillError("UNAUTHENTICATED", "Missing or bad credentials");
      }
      return answer();
    }
    if (typeof header.auth !== "string") {
      throw new RillError("INVALID_REQUEST", '"auth" must be an API key "<keyId>.<secret>"');
    }
    const gate = security.authenticate(`Bearer ${header.auth}`).then((who) => {
      if ("error" in who) {
        security.auditDenied({
          audit: "authentication_failed",
          reason: who.error,
          keyId: who.keyId ?? null,
          method: "WS",
          path: "/v1/ws hello",
        });
        done(this.#error(id, new RillError("UNAUTHENTICATED", "Missing or bad credentials")));
        return;
      }
      this.#principal = who;
      answer();
    }).finally(() => {
      if (this.#gate === gate) this.#gate = null;
    });
    this.#gate = gate;
  }

  /** A JSON produce frame: its fields checked, then produced as a binary one is. */
  #produce(id: number, h: Record<string, unknown>, payload: Uint8Array, done: Done): void {
    const principal = this.#authenticated();
    if (typeof h.topic !== "string") {
      throw new RillError("INVALID_REQUEST", 'A produce needs a string "topic"');
    }
    this.#authorize(principal, h.topic, "write");
    const partition = intField(h.partition, "partition", 0, 0x7fffffff);
    this.#produceChecked(principal, id, h.topic, partition, acksOf(h.acks), payload, 0, done);
  }

  /**
   * A binary produce frame (src/protocol/ws_produce_frames.ts): decoded, then produced as a
   * JSON one is; one that cannot be read gets an error frame (with its id when that could be
   * read) and changes nothing.
   */
  #binaryProduce(message: Uint8Array, start: number): void {
    let frame: ProduceFrame;
    try {
      frame = decodeProduceFrame(message);
    } catch (e) {
      const err = e instanceof ProduceFrameError
        ? this.#error(e.id, new RillError("INVALID_REQUEST", e.message))
        : this.#error(null, e);
      this.#meter?.answered("produce", start, err, undefined);
      return;
    }
    try {
      const principal = this.#authenticated();
      this.#authorize(principal, frame.topic, "write");
      this.#produceChecked(
        principal,
        frame.id,
        frame.topic,
        frame.partition,
        frame.acks,
        frame.payload,
        start,
        null,
      );
    } catch (e) {
      this.#meter?.answered("produce", start, this.#error(frame.id, e), frame.acks);
    }
  }

  /**
   * The produce of a frame, JSON or binary, once its fields are read and the principal may
   * write the topic: the topic name, size, quota and in-flight checks, then the broker's
   * produce path; answered in the frame's kind: a JSON frame's `done` reports it, a binary
   * one (`done` null) is reported here (no closure per frame), after its answer is sent.
   */
  #produceChecked(
    principal: Principal,
    id: number,
    name: string,
    partition: number,
    acks: Acks,
    payload: Uint8Array,
    start: number,
    done: Done | null,
  ): void {
    // A producer names the same topic frame after frame: checked once while it does.
    const topic = name === this.#lastTopic ? name : validateTopicName(name);
    this.#lastTopic = topic;
    const size = payload.byteLength;
    const cfg = this.#broker.config;
    if (size > cfg.maxRequestBytes) {
      throw new RillError(
        "RECORD_LIST_TOO_LARGE",
        `The produce payload is larger than the limit of ${cfg.maxRequestBytes} bytes`,
        { maxBytes: cfg.maxRequestBytes },
      );
    }
    const { quotas } = this.#installed;
    const admitted = quotas.admit(principal.name, size, false);
    if (admitted.waitMs > 0) {
      throw new RillError("THROTTLING_QUOTA_EXCEEDED", (admitted as { message: string }).message, {
        retryAfterMs: admitted.waitMs,
      });
    }
    if (this.#inFlightBytes + size > this.#limits.maxInFlightBytes && this.#inFlightBytes > 0) {
      throw new RillError(
        "THROTTLING_QUOTA_EXCEEDED",
        `The connection has ${this.#inFlightBytes} produce bytes unanswered; its limit is ${this.#limits.maxInFlightBytes}`,
        { retryAfterMs: 10 },
      );
    }
    const release = quotas.reserveBody(size);
    if (release === null) {
      throw new RillError(
        "THROTTLING_QUOTA_EXCEEDED",
        "The broker is holding too many request bodies at once",
        { retryAfterMs: 1000 },
      );
    }
    this.#inFlightBytes += size;
    let answer: BatchAppendResult | null | Promise<BatchAppendResult | null>;
    try {
      // A single-record produce written synchronously is answered here, with no promise.
      answer = this.#broker.produceBatchesNow(topic, partition, payload, acks);
    } catch (e) {
      answer = Promise.reject(e);
    }
    if (!(answer instanceof Promise)) {
      return this.#produced(id, size, release, start, acks, done, answer);
    }
    answer.then(
      (result) => this.#produced(id, size, release, start, acks, done, result),
      (e) => {
        this.#inFlightBytes -= size;
        release();
        const err = this.#error(id, e);
        if (done === null) this.#meter?.answered("produce", start, err, acks);
        else done(err);
      },
    );
  }

  /** Answers a produce that succeeded (see {@linkcode #produceChecked}). */
  #produced(
    id: number,
    size: number,
    release: () => void,
    start: number,
    acks: Acks,
    done: Done | null,
    result: BatchAppendResult | null,
  ): void {
    this.#inFlightBytes -= size;
    release();
    if (done === null) {
      this.#sendBytes(encodeProducedFrame(id, result, lendScratch));
      this.#meter?.answered("produce", start, null, acks);
    } else {
      this.#sendText(producedAnswer(id, result));
      done(null);
    }
  }

  /**
   * Looks up an offset of a partition, as `GET /v1/topics/{t}/partitions/{p}/offsets?at=`: a
   * consumer assigned a partition at "latest" asks it over the connection it fetches on,
   * instead of over an HTTP connection the broker then holds idle (870 of them in the
   * 5,000-client crowd of `deno task bench clients`, ~26 KiB each in a bare `Deno.serve`).
   */
  #offsets(id: number, h: Record<string, unknown>, done: Done): void {
    const principal = this.#authenticated();
    if (typeof h.topic !== "string") {
      throw new RillError("INVALID_REQUEST", 'An offsets request needs a string "topic"');
    }
    this.#authorize(principal, h.topic, "read");
    const topic = validateTopicName(h.topic);
    const partition = intField(h.partition, "partition", 0, 0x7fffffff);
    const at = h.at ?? "latest";
    let spec: OffsetSpec;
    if (at === "earliest" || at === "latest") spec = at;
    else if (Number.isSafeInteger(at) && (at as number) >= 0) spec = { timestamp: at as number };
    else {
      throw new RillError(
        "INVALID_REQUEST",
        `"at" must be "earliest", "latest" or a timestamp in ms, got ${
          JSON.stringify(at)?.slice(0, 50)
        }`,
      );
    }
    const admitted = this.#installed.quotas.admit(principal.name, 0, false);
    if (admitted.waitMs > 0) {
      throw new RillError("THROTTLING_QUOTA_EXCEEDED", (admitted as { message: string }).message, {
        retryAfterMs: admitted.waitMs,
      });
    }
    this.#broker.listOffset(topic, partition, spec).then(
      (offset) => {
        done(null);
        this.#sendText(`{"op":"offsets","id":${id},"offset":${offset}}`);
      },
      (e) => done(this.#error(id, e)),
    );
  }

  #fetch(id: number, h: Record<string, unknown>, done: Done): void {
    const principal = this.#authenticated();
    const cfg = this.#broker.config;
    // An incremental session request may name no partition (nothing changed), nor may one
    // that closes its session (epoch -1).
    const epoch = (h.session as { epoch?: unknown } | null | undefined)?.epoch;
    if (
      !Array.isArray(h.partitions) ||
      (h.partitions.length === 0 && !(typeof epoch === "number" && (epoch > 0 || epoch === -1)))
    ) {
      throw new RillError("INVALID_REQUEST", '"partitions" must list at least one partition');
    }
    const partitions = this.#partitionsOf(principal, h.partitions);
    const maxWaitMs = h.maxWaitMs === undefined
      ? 0
      : intField(h.maxWaitMs, "maxWaitMs", 0, cfg.fetchMaxWaitLimitMs);
    const minBytes = h.minBytes === undefined ? 1 : intField(h.minBytes, "minBytes", 0);
    // An answer is at most a quarter of the connection's unsent-data bound (its first batch
    // whole): answers read and waiting to go out are at most MAX_FETCHES of them. The
    // connection's only fetch (a consumer's fetch session: one per broker) may fill the whole
    // bound, so a many-partition consumer gets 4 times fewer, larger answers.
    const share = this.#fetches === 0
      ? this.#limits.maxUnsentBytes
      : this.#limits.maxUnsentBytes >> 2;
    const maxBytes = Math.min(
      h.maxBytes === undefined ? Infinity : intField(h.maxBytes, "maxBytes", 1),
      Math.max(1, share),
    );
    let session: { id: number; epoch: number } | undefined;
    if (h.session !== undefined) {
      const raw = h.session as Record<string, unknown> | null;
      session = {
        id: intField(raw?.id, "session.id", 0),
        epoch: intField(raw?.epoch, "session.epoch", -1),
      };
    }
    this.#admitFetch(principal);
    this.#fetches++;
    (async () => {
      await this.waitForDrain();
      if (this.#closed) return;
      const result = await this.#broker.fetchMany({
        partitions,
        maxWaitMs,
        minBytes,
        maxBytes,
        session,
        signal: (this.#abort ??= new AbortController()).signal,
      });
      try {
        // One answer at a time goes out, each once the socket has drained below the bound:
        // at once (no turn between the wake-up and the send) when no earlier answer is
        // waiting and the socket has room.
        if (this.#answersWaiting > 0 || !this.#drained()) {
          this.#answersWaiting++;
          const turn = this.#answers.then(() => this.waitForDrain());
          this.#answers = turn;
          try {
            await turn;
          } finally {
            this.#answersWaiting--;
          }
        }
        const payload: Uint8Array[] = [];
        const json = recordsAnswerJson(id, result, payload);
        done(null);
        this.#sendFrame(encodeJsonFrame(json, payload, lendScratch));
        this.#installed.quotas.chargeFetched(principal.name, result.totalBytes);
      } finally {
        result.release();
      }
    })().catch((e) => done(this.#error(id, e))).finally(() => this.#fetches--);
  }

  /** Checks the partitions of a fetch or subscribe frame, and the read ACL of their topics. */
  #partitionsOf(principal: Principal, raw: unknown[]): FetchPartitionRequest[] {
    const cfg = this.#broker.config;
    if (raw.length > MAX_FETCH_PARTITIONS) {
      throw new RillError(
        "INVALID_REQUEST",
        `One fetch may name at most ${MAX_FETCH_PARTITIONS} partitions, got ${raw.length}`,
      );
    }
    const partitions: FetchPartitionRequest[] = raw.map((entry: unknown, i: number) => {
      const p = entry as Record<string, unknown> | null;
      if (p === null || typeof p !== "object" || typeof p.topic !== "string") {
        throw new RillError("INVALID_REQUEST", `partitions[${i}] needs a string "topic"`);
      }
      const topic = validateTopicName(p.topic);
      return {
        topic,
        partition: intField(p.partition, `partitions[${i}].partition`, 0, 0x7fffffff),
        offset: intField(p.offset, `partitions[${i}].offset`, -Number.MAX_SAFE_INTEGER),
        maxBytes: Math.min(
          p.maxBytes === undefined
            ? cfg.fetchDefaultMaxBytes
            : intField(p.maxBytes, `partitions[${i}].maxBytes`, 1),
          cfg.fetchMaxBytesLimit,
        ),
      };
    });
    for (const topic of new Set(partitions.map((p) => p.topic))) {
      this.#authorize(principal, topic, "read");
    }
    return partitions;
  }

  /**
   * The most bytes of one answer: at most a quarter of the connection's unsent-data bound
   * (its first batch whole), so answers read and waiting to go out are at most MAX_FETCHES
   * of them.
   */
  #answerBytes(h: Record<string, unknown>): number {
    return Math.min(
      h.maxBytes === undefined ? Infinity : intField(h.maxBytes, "maxBytes", 1),
      Math.max(1, this.#limits.maxUnsentBytes >> 2),
    );
  }

  /** Admits one more fetch or subscription on the connection (its count, the fetch quota). */
  #admitFetch(principal: Principal): void {
    if (this.#fetches >= MAX_FETCHES) {
      throw new RillError(
        "THROTTLING_QUOTA_EXCEEDED",
        `The connection has ${this.#fetches} fetches waiting; its limit is ${MAX_FETCHES}`,
        { retryAfterMs: 100 },
      );
    }
    const admitted = this.#installed.quotas.admit(principal.name, 0, true);
    if (admitted.waitMs > 0) {
      throw new RillError("THROTTLING_QUOTA_EXCEEDED", (admitted as { message: string }).message, {
        retryAfterMs: admitted.waitMs,
      });
    }
  }

  /**
   * Starts a push subscription (subscription.ts): answered `subscribed` at once, then
   * `records` frames with the same id.
   */
  #subscribe(id: number, h: Record<string, unknown>, done: Done): void {
    const principal = this.#authenticated();
    if (!Array.isArray(h.partitions) || h.partitions.length === 0) {
      throw new RillError("INVALID_REQUEST", '"partitions" must list at least one partition');
    }
    if (this.#subs.has(id)) {
      throw new RillError("INVALID_REQUEST", `Subscription ${id} is already open`);
    }
    const partitions = this.#partitionsOf(principal, h.partitions);
    const maxBytes = this.#answerBytes(h);
    const credit = h.credit === undefined ? 1 : intField(h.credit, "credit", 1, MAX_CREDIT);
    this.#admitFetch(principal);
    this.#fetches++;
    const sub = new Subscription(
      {
        broker: this.#broker,
        closed: () => this.#closed,
        drained: () => this.#drained(),
        waitForDrain: () => this.waitForDrain(),
        push: (partitions, bytes) => {
          if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) return;
          this.#sendFrame(recordsPushFrame(id, partitions, this.#binaryRecords, lendScratch));
          this.#installed.quotas.chargeFetched(principal.name, bytes);
        },
      },
      partitions,
      maxBytes,
      credit,
    );
    this.#subs.set(id, sub);
    done(null);
    this.#send({ op: "subscribed", id });
    sub.run().catch((e) => {
      if (this.#subs.get(id) === sub) this.#error(id, e);
    }).finally(() => {
      if (this.#subs.get(id) === sub) this.#subs.delete(id);
      this.#fetches--;
    });
  }

  /** A `credit` (more pushes, unanswered) or `unsubscribe` frame for a subscription. */
  #subscription(id: number, op: "credit" | "unsubscribe", h: Record<string, unknown>, done: Done) {
    const subId = intField(h.subscription, "subscription", 0);
    const sub = this.#subs.get(subId);
    if (op === "credit") {
      const n = intField(h.n, "n", 1, MAX_CREDIT);
      if (sub === undefined) {
        throw new RillError("INVALID_REQUEST", `No subscription ${subId} is open`);
      }
      sub.grant(n);
      done(null);
      return;
    }
    if (sub !== undefined) {
      this.#subs.delete(subId);
      sub.end();
    }
    done(null);
    this.#send({ op: "unsubscribed", id, subscription: subId });
  }

  #authenticated(): Principal {
    if (this.#principal === null) {
      throw new RillError(
        "UNAUTHENTICATED",
        "Missing or bad credentials: send an API key in the handshake or a hello frame first",
      );
    }
    return this.#principal;
  }

  #authorize(principal: Principal, topic: string, operation: Operation): void {
    const { security } = this.#installed;
    const resource = { type: "topic" as const, name: topic };
    if (security.allowed(principal, resource, operation)) return;
    security.auditDenied({
      audit: "authorization_denied",
      principal: principal.name,
      keyId: principal.keyId,
      resourceType: "topic",
      resourceName: topic.slice(0, 255),
      operation,
      method: "WS",
      path: "/v1/ws",
    });
    throw new RillError(
      FAILED_CODE.topic,
      `Principal "${principal.name}" is not authorized to ${operation} topic "${
        topic.slice(0, 255)
      }"`,
    );
  }

  /**
   * Waits until the bytes queued on the socket are below `maxUnsentBytes` (a fetch starts
   * only then). The socket has no drain event: a 5 ms check runs while someone waits.
   */
  waitForDrain(): Promise<void> {
    if (this.#drained()) return Promise.resolve();
    this.#drainTimer ??= setInterval(() => {
      if (!this.#closed && this.#socket.bufferedAmount >= this.#limits.maxUnsentBytes) return;
      clearInterval(this.#drainTimer);
      this.#drainTimer = undefined;
      for (const w of this.#drainWaiters.splice(0)) w();
    }, 5);
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Whether the bytes queued on the socket are below the connection's bound (or it closed). */
  #drained(): boolean {
    return this.#closed || this.#socket.bufferedAmount < this.#limits.maxUnsentBytes;
  }

  #send(header: Record<string, unknown>, payload?: Uint8Array[]): void {
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) return;
    this.#sendFrame(encodeFrame(header, payload, lendScratch));
  }

  /** Sends an encoded frame, in parts to a client that takes them when it is long. */
  #sendFrame(frame: Uint8Array<ArrayBuffer>): void {
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) return;
    if (!this.#answerParts || frame.byteLength <= WS_ANSWER_PART_BYTES) {
      this.#socket.send(frame);
      return;
    }
    // In parts (ws_frames.ts WS_ANSWER_PART_BYTES), each through one reused buffer (send
    // copies it).
    const room = WS_ANSWER_PART_BYTES - 4;
    const part = partBuffer();
    const view = new DataView(part.buffer);
    for (let pos = 0; pos < frame.byteLength; pos += room) {
      const chunk = frame.subarray(pos, Math.min(frame.byteLength, pos + room));
      view.setUint32(0, pos + room >= frame.byteLength ? WS_PART_LAST : WS_PART_MORE);
      part.set(chunk, 4);
      this.#socket.send(part.subarray(0, 4 + chunk.byteLength));
    }
  }

  /** Sends a message already encoded (into the shared scratch buffer, or its own). */
  #sendBytes(message: Uint8Array): void {
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) return;
    this.#socket.send(message);
  }

  /** Sends a frame of an ASCII JSON header written as text, with no payload. */
  #sendText(json: string): void {
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) return;
    this.#socket.send(encodeAsciiFrame(json, lendScratch));
  }

  /** Answers with an error; returns the error answered with. */
  #error(id: number | null, e: unknown): RillError {
    let err: RillError;
    if (e instanceof RillError) err = e;
    else {
      console.error("Unhandled error on a WebSocket request:", e);
      err = new RillError("UNKNOWN_SERVER_ERROR", "The broker failed to handle the request");
    }
    this.#send({ op: "error", id, ...err.toJSON() });
    return err;
  }
}

/** Reports a frame's outcome to the meter (null: answered with success). */
type Done = (err: RillError | null) => void;
