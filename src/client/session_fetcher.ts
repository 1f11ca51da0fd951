/**
 * The consumer's fetching: one long poll per broker for all the partitions it reads there
 * (`POST /v1/fetch`, multi_fetch.ts), in a fetch session (Kafka's KIP-227), instead of one
 * request per partition.
 *
 * Each broker that leads (or, with `readFrom`, serves) some of the partitions gets one loop:
 * it sends a fetch for every partition of that broker that may be fetched now, waits for the
 * answer, hands each partition's batches to the host, and sends the next fetch at once with
 * the new offsets. The first request of a loop opens a session with the full partition set;
 * later ones send only partitions whose offset changed, and `forgotten` for those that left
 * (paused, buffer full, moved to another broker). A session the broker no longer knows is
 * reopened with a full request.
 *
 * Partition errors come back per partition: a partition whose leader moved goes to the loop
 * of its new broker (the transport learns the route); other errors go to the host (offset
 * reset, backoff, or failing the consumer). A partition whose buffer is full is left out of
 * the request; while some are, the request waits at most {@linkcode BACKPRESSURE_WAIT_MS}, so
 * a partition whose buffer empties is fetched again soon even when the others are idle.
 *
 * With `push`, a broker whose WebSocket connection offers push subscriptions is not
 * long-polled: its loop reads through one subscription instead (push_loop.ts), re-made
 * whenever the plan of its partitions changes; errors of the whole subscription are retried
 * as those of a fetch are.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import {
  type MultiFetchRequest,
  type PartitionFetch,
  type RawFetchAnswer,
  type RawPartitionAnswer,
  requestFetch,
} from "./multi_fetch.ts";
import { PushLoop } from "./push_loop.ts";
import { delay, isRetriable, retryDelay } from "./retry.ts";
import type { Transport } from "./transport.ts";

/**
 * An answer of at most this many bytes reaches the consumer's handler before the next fetch
 * is sent (when the handler was waiting for records); a larger one is decoded while it is.
 */
export const HANDOVER_MAX_BYTES = 64 * 1024;

/** The longest wait of a fetch while some partition of its broker is held back by a full buffer. */
export const BACKPRESSURE_WAIT_MS = 50;

/**
 * The longest `stop()` waits for a broker to answer the closing of a fetch session (answered
 * at once normally): an unresponsive broker cannot hold a consumer's `stop()` forever; its
 * session expires there by itself.
 */
export const CLOSE_SESSION_TIMEOUT_MS = 5_000;

/** A partition as the fetcher sees it. */
export interface FetchedPartition {
  /** the topic */
  readonly topic: string;
  /** the partition */
  readonly partition: number;
}

/** What the fetcher asks of its host (the consumer). */
export interface SessionFetcherHost<S extends FetchedPartition> {
  /**
   * Where to fetch a partition from now: an offset, "skip" (not now: buffer full or backing
   * off), or "gone" (no longer fetched under this token). With `evenIfFull`, a full buffer
   * does not skip it (a push subscription keeps it, and withholds credit instead).
   */
  fetchOffset(s: S, token: number, evenIfFull?: boolean): number | "skip" | "gone";
  /** Whether a skipped partition is skipped for its full buffer (shortens the long poll). */
  heldBack(s: S): boolean;
  /** A partition's answer (its token still current): batches fetched from `offset`. */
  deliver(s: S, token: number, answer: RawPartitionAnswer, offset: number): void;
  /**
   * After the answers of a fetch were delivered: with `wait`, a promise that settles once the
   * records reached the handler, when a delivery loop was waiting for them (the next request
   * waits for it); else null (the next request goes at once).
   */
  handedOver?(wait: boolean): Promise<void> | null;
  /** A partition's error (its token still current, not a leader move). */
  partitionError(s: S, token: number, e: RillError): void;
  /** A failure of whole requests that retries did not cure: the consumer stops. */
  fail(e: unknown): void;
}

/** Fetch sizes and waits. */
export interface SessionFetcherOptions {
  /** the long poll */
  maxWaitMs: number;
  /** bytes to wait for, over all partitions of a broker */
  minBytes: number;
  /** the most bytes per partition */
  maxBytes: number;
  /** the most bytes of one answer */
  fetchMaxBytes: number;
  /**
   * read a broker's partitions through a push subscription of its WebSocket connection where
   * it offers them (push_loop.ts), instead of long polls
   */
  push?: boolean;
}

interface Entry<S> {
  s: S;
  token: number;
  key: string;
}

/**
 * Fetches many partitions with one request per broker.
 *
 * @example
 * ```ts
 * const fetcher = new SessionFetcher(transport, options, host);
 * fetcher.add(state, state.loop);
 * // … fetcher.wake() when a buffer frees, fetcher.stop() when done
 * ```
 */
export class SessionFetcher<S extends FetchedPartition> {
  readonly #t: Transport;
  readonly #opts: SessionFetcherOptions;
  readonly #host: SessionFetcherHost<S>;
  readonly #entries = new Map<string, Entry<S>>();
  readonly #loops = new Map<string, BrokerLoop<S>>();
  #running = true;

  /**
   * @param transport the client's transport
   * @param options sizes and waits
   * @param host the consumer's side
   */
  constructor(transport: Transport, options: SessionFetcherOptions, host: SessionFetcherHost<S>) {
    this.#t = transport;
    this.#opts = options;
    this.#host = host;
  }

  /**
   * Starts (or restarts under a new token) fetching a partition.
   *
   * @param s the partition
   * @param token results are handed over only while the host's token is this one
   */
  add(s: S, token: number): void {
    const key = `${s.topic}\u0000${s.partition}`;
    this.#entries.set(key, { s, token, key });
    this.wake();
  }

  /** Tells the loops that a partition may be fetchable again (buffer space, backoff over). */
  wake(): void {
    if (!this.#running) return;
    for (const e of this.#entries.values()) {
      const base = this.#t.readBase(e.s.topic, e.s.partition);
      const loop = this.#loops.get(base);
      if (loop === undefined) {
        const started = new BrokerLoop(this, base);
        this.#loops.set(base, started);
        // On a microtask: partitions added in the same turn (assign, a group's grant) go
        // into the first request together.
        queueMicrotask(() => started.run());
      }
    }
    for (const loop of this.#loops.values()) loop.wake();
  }

  /**
   * Stops every loop, aborts their requests and closes their sessions on the brokers.
   *
   * @returns a promise that settles once the sessions are closed (or could not be)
   */
  stop(): Promise<void> {
    this.#running = false;
    const closing = [...this.#loops.values()].map((loop) => loop.stop());
    this.#loops.clear();
    this.#entries.clear();
    return Promise.all(closing).then(() => {});
  }

  /** Whether the fetcher runs. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * @internal the parts a loop fetches now; with `evenIfFull` (a push subscription) those
   * whose buffer is full are named too, `heldBack` telling that some are
   */
  plan(
    base: string,
    evenIfFull = false,
  ): { fetch: Map<string, { e: Entry<S>; offset: number }>; heldBack: boolean } {
    const fetch = new Map<string, { e: Entry<S>; offset: number }>();
    let heldBack = false;
    for (const [key, e] of this.#entries) {
      const offset = this.#host.fetchOffset(e.s, e.token, evenIfFull);
      if (offset === "gone") {
        this.#entries.delete(key);
        continue;
      }
      if (this.#t.readBase(e.s.topic, e.s.partition) !== base) continue;
      if (offset === "skip") {
        if (this.#host.heldBack(e.s)) heldBack = true;
        continue;
      }
      if (evenIfFull && this.#host.heldBack(e.s)) heldBack = true;
      fetch.set(key, { e, offset });
    }
    return { fetch, heldBack };
  }

  /** @internal */
  get transport(): Transport {
    return this.#t;
  }

  /** @internal */
  get options(): SessionFetcherOptions {
    return this.#opts;
  }

  /** @internal */
  get host(): SessionFetcherHost<S> {
    return this.#host;
  }

  /**
   * A partition's error in an answer of broker `base`: a leader that moved is learned (the
   * partition is read from its new leader from now on); any other error goes to the host.
   *
   * @returns whether the partition moved to another broker
   */
  partitionFailed(
    base: string,
    s: S,
    token: number,
    e: RillError,
    topic: string,
    partition: number,
  ): boolean {
    if (e.code === "NOT_LEADER_OR_FOLLOWER" || e.code === "LEADER_NOT_AVAILABLE") {
      if (this.#t.learnRead(topic, partition, e, base)) return true;
    }
    this.#host.partitionError(s, token, e);
    return false;
  }

  /** @internal the current entry of a key */
  entry(key: string): Entry<S> | undefined {
    return this.#entries.get(key);
  }
}

/** One broker's fetch loop. */
class BrokerLoop<S extends FetchedPartition> {
  readonly #f: SessionFetcher<S>;
  readonly #base: string;
  #session: { id: number; epoch: number } | null = null;
  /** what the broker's session holds: key → offset sent */
  readonly #sent = new Map<string, { topic: string; partition: number; offset: number }>();
  #wake: (() => void) | null = null;
  #abort: AbortController | null = null;
  #stopped = false;
  /** the push subscription reading this broker's partitions, while there is one */
  #push: PushLoop<S> | null = null;
  /** consecutive failures of whole requests (or subscriptions) */
  #failures = 0;

  constructor(fetcher: SessionFetcher<S>, base: string) {
    this.#f = fetcher;
    this.#base = base;
  }

  wake(): void {
    this.#push?.wake();
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  stop(): Promise<void> {
    this.#stopped = true;
    this.#push?.stop();
    this.#abort?.abort();
    this.wake();
    return this.#closeSession();
  }

  /**
   * A whole request (or subscription) failed: retried after a backoff, or the consumer fails.
   *
   * @returns whether the loop goes on
   */
  async #failed(e: unknown, partitions: Iterable<{ e: Entry<S> }>): Promise<boolean> {
    const f = this.#f;
    if (e instanceof RillError && e.code === "BROKER_NOT_AVAILABLE") {
      // Its partitions go back to the bootstrap brokers, which name their leaders.
      for (const { e: entry } of partitions) {
        f.transport.forgetRead(entry.s.topic, entry.s.partition);
      }
    }
    if (isRetriable(e) && this.#failures < f.transport.retry.retries) {
      await delay(retryDelay(this.#failures++, f.transport.retry));
      f.wake();
      return true;
    }
    f.host.fail(e);
    return false;
  }

  /**
   * Reads through a push subscription while the broker's WebSocket connection offers them.
   *
   * @returns "fetch" when this broker is to be long-polled instead, "stop" when the loop ends,
   *   "again" to plan again
   */
  async #pushed(): Promise<"fetch" | "stop" | "again"> {
    const f = this.#f;
    let conn;
    try {
      conn = await f.transport.pushConnection(this.#base);
    } catch (e) {
      if (this.#stopped || !f.running) return "stop";
      return await this.#failed(e, f.plan(this.#base, true).fetch.values()) ? "again" : "stop";
    }
    if (conn === null) return "fetch";
    if (this.#stopped || !f.running) return "stop";
    const push = new PushLoop(f, this.#base, conn);
    this.#push = push;
    try {
      await push.run();
      return "stop";
    } catch (e) {
      if (this.#stopped || !f.running) return "stop";
      if (push.received > 0) this.#failures = 0;
      return await this.#failed(e, f.plan(this.#base, true).fetch.values()) ? "again" : "stop";
    } finally {
      this.#push = null;
      push.stop();
    }
  }

  async run(): Promise<void> {
    const f = this.#f;
    const o = f.options;
    while (!this.#stopped && f.running) {
      if (o.push) {
        const next = await this.#pushed();
        if (next === "stop") return;
        if (next === "again") continue;
      }
      const { fetch, heldBack } = f.plan(this.#base);
      if (fetch.size === 0) {
        // Nothing of this broker to fetch now; the session stays for when there is.
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }
      const req = this.#request(
        fetch,
        heldBack ? Math.min(o.maxWaitMs, BACKPRESSURE_WAIT_MS) : o.maxWaitMs,
      );
      const abort = new AbortController();
      this.#abort = abort;
      const started = Date.now();
      let answer;
      try {
        answer = await this.#send(req, abort.signal);
      } catch (e) {
        if (this.#stopped || !f.running) return;
        this.#session = null;
        this.#sent.clear();
        if (
          e instanceof RillError &&
          (e.code === "FETCH_SESSION_ID_NOT_FOUND" || e.code === "INVALID_FETCH_SESSION_EPOCH")
        ) {
          continue; // reopen with a full request
        }
        if (await this.#failed(e, fetch.values())) continue;
        return;
      } finally {
        if (this.#abort === abort) this.#abort = null;
      }
      this.#failures = 0;
      this.#session = answer.session;
      if (answer.session === null) this.#sent.clear();
      let moved = false;
      let records = false;
      let bytes = 0;
      for (const p of answer.partitions) {
        const key = `${p.topic}\u0000${p.partition}`;
        const asked = fetch.get(key) ?? this.#askedBefore(key);
        if (asked === undefined) continue;
        const current = f.entry(key);
        if (current === undefined || current.token !== asked.e.token) continue;
        if (p.error !== null) {
          if (
            f.partitionFailed(this.#base, current.s, current.token, p.error, p.topic, p.partition)
          ) {
            moved = true;
          }
          continue;
        }
        if (p.bytes.length > 0) records = true;
        bytes += p.bytes.length;
        f.host.deliver(current.s, current.token, p, asked.offset);
      }
      if (moved) f.wake();
      // A small answer (records trickling in) reaches the handler before the next request
      // is written: that write and the request's encoding cost ~30 µs of the latency from
      // produce to handler (bench clients, e2e). A large one is decoded while the next
      // request is on its way.
      const handed = records ? f.host.handedOver?.(bytes <= HANDOVER_MAX_BYTES) : null;
      if (handed) {
        await handed;
        if (this.#stopped || !f.running) return;
      }
      if (!records && Date.now() - started < o.maxWaitMs / 2 && !heldBack) {
        // The broker answered early with nothing (errors, or it is draining): do not spin.
        await delay(Math.min(100, Math.max(10, o.maxWaitMs / 2)));
      }
    }
  }

  /**
   * Sends a fetch: over the transport's WebSocket connection to the broker when it speaks
   * WebSocket there (transport.ts `fetchMany`, which has no `forgotten`: a request that would
   * forget partitions opens a new session instead), else `POST /v1/fetch`.
   */
  async #send(req: MultiFetchRequest, signal: AbortSignal): Promise<RawFetchAnswer> {
    const t = this.#f.transport;
    let wsReq = req;
    if (req.forgotten !== undefined) {
      wsReq = {
        ...req,
        forgotten: undefined,
        session: { id: 0, epoch: 0 },
        partitions: this.#full(),
      };
    }
    const ws = await t.fetchMany(this.#base, {
      partitions: wsReq.partitions,
      maxWaitMs: wsReq.maxWaitMs,
      minBytes: wsReq.minBytes,
      maxBytes: wsReq.maxBytes,
      session: wsReq.session,
    });
    if (ws === null) return await requestFetch(t, this.#base, req, signal);
    return {
      session: ws.session,
      partitions: ws.partitions.map((p): RawPartitionAnswer =>
        p.error !== undefined
          ? {
            topic: p.topic,
            partition: p.partition,
            nextOffset: -1,
            highWatermark: -1,
            logStartOffset: -1,
            bytes: new Uint8Array(0),
            error: p.error,
          }
          : { ...p, error: null }
      ),
    };
  }

  /** Every partition the session holds now, as a full request names them. */
  #full(): PartitionFetch[] {
    const o = this.#f.options;
    return [...this.#sent.values()].map((x) => ({
      topic: x.topic,
      partition: x.partition,
      offset: x.offset,
      maxBytes: o.maxBytes,
    }));
  }

  /** The entry and offset of a partition this session fetches without having resent it. */
  #askedBefore(key: string): { e: Entry<S>; offset: number } | undefined {
    const sent = this.#sent.get(key);
    const e = this.#f.entry(key);
    if (sent === undefined || e === undefined) return undefined;
    return { e, offset: sent.offset };
  }

  /** The next request: full (opening a session) or only what changed. */
  #request(
    fetch: Map<string, { e: Entry<S>; offset: number }>,
    maxWaitMs: number,
  ): MultiFetchRequest {
    const o = this.#f.options;
    const part = (x: { e: Entry<S>; offset: number }): PartitionFetch => ({
      topic: x.e.s.topic,
      partition: x.e.s.partition,
      offset: x.offset,
      maxBytes: o.maxBytes,
    });
    const base = { maxWaitMs, minBytes: o.minBytes, maxBytes: o.fetchMaxBytes };
    if (this.#session === null) {
      this.#sent.clear();
      for (const [key, x] of fetch) {
        this.#sent.set(key, { topic: x.e.s.topic, partition: x.e.s.partition, offset: x.offset });
      }
      return { ...base, partitions: [...fetch.values()].map(part), session: { id: 0, epoch: 0 } };
    }
    const partitions: PartitionFetch[] = [];
    const forgotten: { topic: string; partition: number }[] = [];
    for (const [key, x] of fetch) {
      const sent = this.#sent.get(key);
      if (sent === undefined || sent.offset !== x.offset) {
        partitions.push(part(x));
        this.#sent.set(key, { topic: x.e.s.topic, partition: x.e.s.partition, offset: x.offset });
      }
    }
    for (const [key, sent] of this.#sent) {
      if (!fetch.has(key)) {
        forgotten.push({ topic: sent.topic, partition: sent.partition });
        this.#sent.delete(key);
      }
    }
    const req: MultiFetchRequest = { ...base, partitions, session: this.#session };
    if (forgotten.length > 0) req.forgotten = forgotten;
    return req;
  }

  /**
   * Frees the broker's session slot (epoch -1, answered at once); failures are ignored (it
   * expires). Over the broker's open WebSocket connection when there is one, sent before this
   * returns (a stopping consumer closes its connections right after); else over HTTP, which
   * took a TCP connection of its own for each consumer that stopped.
   */
  async #closeSession(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    this.#sent.clear();
    if (session === null) return;
    if (this.#f.transport.closeFetchSession(this.#base, session.id)) return;
    await requestFetch(this.#f.transport, this.#base, {
      partitions: [],
      maxWaitMs: 0,
      minBytes: 1,
      session: { id: session.id, epoch: -1 },
    }, AbortSignal.timeout(CLOSE_SESSION_TIMEOUT_MS)).catch(() => {});
  }
}
