/**
 * One fetch per leader broker for all the partitions this broker copies from it (followers
 * and edge observers), through the leader's fetch-session core:
 *
 * ```
 * POST {leader}/v1/fetch     Accept: application/vnd.rill.fetch
 *   {"replicaId":<my id>, "maxWaitMs", "minBytes":1, "maxBytes",
 *    "partitions":[{"topic","partition","offset":<my log end offset>,"maxBytes","leaderEpoch"}]}
 * ```
 *
 * (an observer sends `observerId` instead of `replicaId`, and no `leaderEpoch`: it reads
 * committed batches, as a consumer, and the leader records how far its copy is, to send
 * consumers of its rack to it: KIP-392). The leader answers as soon as any of the partitions has data, so one long poll
 * per leader replaces one per partition.
 *
 * The requests form an incremental fetch session (fetch_session.ts, Kafka's KIP-227): the
 * first names every partition with `"session":{"id":0,"epoch":0}`; later ones name only the
 * partitions whose offset moved (those that got data) or that joined, the ones that left in
 * `forgotten`, and the session's id and next epoch. The leader keeps the partition set and
 * the replicas it resolved, and answers only the partitions with something new (bytes, an
 * error, a moved high watermark or log start offset), so the cost of a request follows the
 * partitions that moved, not all those copied. Any failed or abandoned request drops the
 * session (its epoch is then unknown): the next request is a full one again. A leader that
 * forgot the session (restart, eviction) answers FETCH_SESSION_ID_NOT_FOUND or
 * INVALID_FETCH_SESSION_EPOCH, and the next request, at once, is a full one. Each partition's part of the answer goes to its
 * {@linkcode ReplicaFetcher} (append, or error handling: truncation, restart behind the
 * leader's log start, backoff), all appended before the next request, which reuses the
 * connection's buffer. A partition checks its log against the leader (truncation) before
 * it first joins a request under an epoch. A partition that joins while a long poll is in
 * flight ends that poll (the connection is closed and opened again), so it starts copying
 * at once rather than after the poll.
 *
 * @module
 */
import { errorFromBody, RillError } from "../protocol/errors.ts";
import { LeaderConnection } from "./replica_client.ts";
import type { Answer, ReplicaFetcher } from "./replica_fetcher.ts";

const FETCH_MEDIA_TYPE = "application/vnd.rill.fetch";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a {@linkcode LeaderFetcher} needs. */
export interface LeaderFetcherOptions {
  /** the leader's broker id */
  leaderId: number;
  /** this broker's id */
  brokerId: number;
  /** resolves a broker id to its URL (null when unknown) */
  leaderUrl: (id: number) => Promise<string | null>;
  /** the long-poll wait */
  maxWaitMs: number;
  /** the most bytes per partition, and per answer */
  maxBytes: number;
  /** called when the leader cannot be reached for a while (metadata may be stale) */
  onStale: () => void;
  /** where to report */
  log: (line: string) => void;
  /** extra headers for requests to the leader (credentials) */
  headers?: () => Record<string, string>;
}

/**
 * The fetch loop of one leader.
 *
 * @example
 * ```ts
 * const shared = new LeaderFetcher({ leaderId: 1, brokerId: 2, leaderUrl, maxWaitMs: 500,
 *   maxBytes: 8 << 20, onStale, log });
 * new ReplicaFetcher({ ...opts, shared }).start(); // joins the loop
 * await shared.close();
 * ```
 */
export class LeaderFetcher {
  readonly #o: LeaderFetcherOptions;
  readonly #members = new Set<ReplicaFetcher>();
  #conn: LeaderConnection | null = null;
  #connOrigin = "";
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #inFlight: { members: Set<ReplicaFetcher>; abort: AbortController } | null = null;
  #closed = false;
  /** the fetch session with the leader (the next request's id and epoch), or null */
  #session: { id: number; epoch: number } | null = null;
  /** what the leader's session holds: each member's offset as last sent */
  readonly #sent = new Map<ReplicaFetcher, number>();
  /** requests answered (for tests and metrics) */
  fetches = 0;
  /** partition entries sent over all requests (for tests and metrics) */
  partitionsSent = 0;

  /** @param opts the leader and the fetch settings */
  constructor(opts: LeaderFetcherOptions) {
    this.#o = opts;
  }

  /** How many partitions it copies. */
  get size(): number {
    return this.#members.size;
  }

  /**
   * Adds a partition (its fetcher's `start()` calls this).
   *
   * @param member the partition's fetcher
   */
  add(member: ReplicaFetcher): void {
    if (this.#closed) return;
    this.#members.add(member);
    const flight = this.#inFlight;
    if (flight !== null && !flight.members.has(member)) {
      // A long poll without it is in flight: end it, so the next request includes it.
      flight.abort.abort();
      this.#conn?.close();
      this.#conn = null;
    }
    this.#wakeUp();
    if (this.#loop === null) {
      // On a microtask: partitions added in the same turn go into one first request.
      this.#loop = Promise.resolve().then(() => this.#run()).catch((e) => {
        if (!this.#closed) this.#o.log(`fetching from broker ${this.#o.leaderId} stopped: ${e}`);
      });
    }
  }

  /**
   * Removes a partition (its fetcher's `stop()` calls this, then waits for its append).
   *
   * @param member the partition's fetcher
   */
  remove(member: ReplicaFetcher): void {
    this.#members.delete(member);
  }

  /** Stops the loop. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#inFlight?.abort.abort();
    this.#conn?.close();
    this.#wakeUp();
    await this.#loop;
    this.#conn?.close();
    this.#conn = null;
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const state = { url: null as string | null, failures: 0 };
    while (!this.#closed) {
      try {
        await this.#round(state);
      } catch (e) {
        // Nothing in a round may end the loop (e.g. KV failing to resolve the leader's URL).
        if (this.#closed) return;
        o.log(`fetching from broker ${o.leaderId} failed: ${e}`);
        state.url = null;
        await this.#pause(200);
      }
    }
  }

  /** One round: pick the partitions, prepare them, fetch, hand the answer out. */
  async #round(state: { url: string | null; failures: number }): Promise<void> {
    const o = this.#o;
    const now = Date.now();
    const ready = [...this.#members].filter((m) => !m.stopped && m.retryAt <= now);
    if (ready.length === 0) {
      const next = Math.min(...[...this.#members].map((m) => m.retryAt));
      await this.#pause(Number.isFinite(next) ? Math.max(1, next - now) : undefined);
      return;
    }
    state.url ??= await o.leaderUrl(o.leaderId);
    const url = state.url;
    if (url === null) {
      await this.#pause(200);
      return;
    }
    const leader = url;
    // One at a time: the connection carries one request at a time.
    const members: ReplicaFetcher[] = [];
    for (const m of ready) {
      if (await m.prepare(leader, (u) => this.#request("GET", u)) && !m.stopped) members.push(m);
    }
    if (members.length === 0 || this.#closed) return;
    const offsets = new Map(members.map((m) => [m, m.replica.logEndOffset]));
    const observer = members[0].observer;
    const session = this.#session;
    // A full request opens a session; an incremental one names only what changed.
    const named = session === null
      ? members
      : members.filter((m) => this.#sent.get(m) !== offsets.get(m));
    const forgotten: { topic: string; partition: number }[] = [];
    if (session !== null) {
      for (const m of this.#sent.keys()) {
        if (!offsets.has(m)) {
          forgotten.push({ topic: m.replica.topic, partition: m.replica.partition });
        }
      }
    }
    const body = {
      ...(observer ? { observerId: o.brokerId } : { replicaId: o.brokerId }),
      maxWaitMs: o.maxWaitMs,
      minBytes: 1,
      maxBytes: o.maxBytes,
      session: session ?? { id: 0, epoch: 0 },
      partitions: named.map((m) => ({
        topic: m.replica.topic,
        partition: m.replica.partition,
        offset: offsets.get(m)!,
        maxBytes: o.maxBytes,
        ...(observer ? {} : { leaderEpoch: m.leaderEpoch }),
      })),
      ...(forgotten.length > 0 ? { forgotten } : {}),
    };
    this.partitionsSent += named.length;
    const abort = new AbortController();
    this.#inFlight = { members: new Set(members), abort };
    // Until an answer arrives, the leader's view of the session is unknown.
    this.#session = null;
    this.#sent.clear();
    let answer: Answer;
    try {
      answer = await this.#request(
        "POST",
        `${url}/v1/fetch`,
        encoder.encode(JSON.stringify(body)),
      );
    } catch (e) {
      if (this.#closed) return;
      if (abort.signal.aborted) return; // a partition joined: ask again with it
      if (
        session !== null && e instanceof RillError &&
        (e.code === "FETCH_SESSION_ID_NOT_FOUND" || e.code === "INVALID_FETCH_SESSION_EPOCH")
      ) {
        return; // the leader forgot the session: a full request, at once
      }
      state.failures++;
      if (e instanceof RillError && e.code !== "BROKER_NOT_AVAILABLE") o.onStale();
      if (state.failures === 1 || state.failures % 50 === 0) {
        o.log(
          `fetching from broker ${o.leaderId}: ${e instanceof RillError ? `${e.code}: ` : ""}${
            e instanceof Error ? e.message : e
          }`,
        );
      }
      state.url = null;
      await this.#pause(Math.min(500, 50 * state.failures));
      return;
    } finally {
      this.#inFlight = null;
    }
    state.failures = 0;
    this.fetches++;
    let parts;
    try {
      const frame = parseFrame(answer.body);
      parts = frame.partitions;
      if (frame.session !== null && frame.session.id > 0) {
        this.#session = frame.session;
        for (const [m, offset] of offsets) this.#sent.set(m, offset);
      }
    } catch (e) {
      o.log(`fetching from broker ${o.leaderId}: ${e}`);
      state.url = null;
      await this.#pause(200);
      return;
    }
    const byKey = new Map(members.map((m) => [`${m.replica.partition}:${m.replica.topic}`, m]));
    await Promise.all(parts.map((p) => {
      const m = byKey.get(`${p.partition}:${p.topic}`);
      if (m === undefined || m.stopped || !this.#members.has(m)) return undefined;
      if (p.error !== null) return m.failed(p.error);
      return m.apply(offsets.get(m)!, p.bytes, p.highWatermark);
    }));
  }

  #pause(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /**
   * One request to the leader: over the kept-alive connection for an `http:` leader
   * (replica_client.ts), through `fetch()` otherwise.
   */
  async #request(method: string, url: string, body?: Uint8Array): Promise<Answer> {
    const headers: Record<string, string> = {
      Accept: method === "POST" ? FETCH_MEDIA_TYPE : "application/json",
      ...this.#o.headers?.(),
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let answer: Answer;
    try {
      if (url.startsWith("http:")) {
        const origin = new URL(url).origin;
        if (this.#conn === null || this.#connOrigin !== origin) {
          this.#conn?.close();
          this.#conn = new LeaderConnection(origin);
          this.#connOrigin = origin;
        }
        const res = await this.#conn.send(method, url.slice(origin.length), headers, body);
        answer = { status: res.status, header: (n) => res.headers.get(n) ?? null, body: res.body };
      } else {
        const res = await fetch(url, {
          method,
          headers,
          body: body as BodyInit | undefined,
          signal: this.#inFlight?.abort.signal,
        });
        answer = {
          status: res.status,
          header: (n) => res.headers.get(n),
          body: new Uint8Array(await res.arrayBuffer()),
        };
      }
    } catch (e) {
      throw new RillError("BROKER_NOT_AVAILABLE", `Cannot reach the leader: ${e}`);
    }
    if (answer.status < 200 || answer.status > 299) {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(decoder.decode(answer.body));
      } catch {
        // not JSON: the status decides
      }
      throw errorFromBody(answer.status, parsed);
    }
    return answer;
  }
}

interface FramePart {
  topic: string;
  partition: number;
  bytes: Uint8Array;
  highWatermark: number;
  error: RillError | null;
}

/** Splits a framed multi-partition answer (routes/fetch.ts) into its session and partitions. */
function parseFrame(
  frame: Uint8Array,
): { session: { id: number; epoch: number } | null; partitions: FramePart[] } {
  if (frame.length < 4) throw new Error("the leader's fetch answer is shorter than its prefix");
  const n = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0);
  const header = JSON.parse(decoder.decode(frame.subarray(4, 4 + n))) as {
    session?: { id: number; epoch: number } | null;
    partitions: {
      topic: string;
      partition: number;
      bytes?: number;
      highWatermark?: number;
      error?: Record<string, unknown>;
    }[];
  };
  let at = 4 + n;
  const session = header.session ?? null;
  const partitions = header.partitions.map((p): FramePart => {
    if (p.error !== undefined) {
      return {
        topic: p.topic,
        partition: p.partition,
        bytes: new Uint8Array(0),
        highWatermark: -1,
        error: errorFromBody(500, { error: p.error }),
      };
    }
    const length = p.bytes ?? 0;
    if (at + length > frame.length) throw new Error("the leader's fetch answer is cut short");
    const bytes = frame.subarray(at, at + length);
    at += length;
    return {
      topic: p.topic,
      partition: p.partition,
      bytes,
      highWatermark: p.highWatermark ?? 0,
      error: null,
    };
  });
  return { session, partitions };
}
