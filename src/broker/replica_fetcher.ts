/**
 * A follower's (or observer's) copy loop for one partition: it pulls from the leader
 * through the ordinary fetch route, as Kafka followers do, and appends what it gets as is.
 *
 * ```
 * GET {leader}/v1/topics/{t}/partitions/{p}/records
 *     ?offset=<my log end offset>&replicaId=<my id>&leaderEpoch=<epoch I follow>
 *     &maxWaitMs=…&maxBytes=…
 *     Accept: application/vnd.rill.batch
 *   200 raw batches up to the leader's log end offset; Rill-High-Watermark header
 * GET {leader}/v1/topics/{t}/partitions/{p}/epoch-end-offset?epoch=<my latest epoch>
 *   200 {"epoch","endOffset","logEndOffset"}     (Kafka's OffsetsForLeaderEpoch)
 * ```
 *
 * The leader learns the follower's log end offset from `offset`, answers at once when it
 * has data and otherwise long-polls, so the follower hears of an append within
 * milliseconds; the high watermark travels with every answer. Before the first fetch under a new epoch, the
 * follower asks the leader where its own latest epoch ends and truncates any suffix the
 * leader does not have, so replicas never diverge.
 *
 * Requests to an `http:` leader go over one kept-alive connection per fetcher
 * (replica_client.ts), which reads each answer's body straight into a reused buffer; the
 * batches are appended (awaited) before the next request reuses it.
 *
 * An observer fetches without `replicaId`, like a consumer: it copies only committed
 * batches (below the leader's high watermark), so it never needs to truncate, and it never
 * counts toward the ISR.
 *
 * A replica whose log end offset is below the leader's log start offset (the leader's
 * retention deleted what it lacks while it was away) gets OFFSET_OUT_OF_RANGE carrying the
 * leader's `logStartOffset`; it then empties its log, restarts it at that offset
 * (`truncateFullyAndStartAt`, as Kafka's handleOutOfRangeError) and fetches from there.
 *
 * @module
 */
import { errorFromBody, RillError } from "../protocol/errors.ts";
import { LOG_OVERHEAD, readBatchHeader } from "../protocol/record_batch.ts";
import type { Replica } from "./replica.ts";
import { LeaderConnection } from "./replica_client.ts";
import { fillOffsetGaps } from "./follower_gaps.ts";
import type { LeaderFetcher } from "./leader_fetcher.ts";
import type { ReplicationThrottle } from "./replication_throttle.ts";

const BATCH_MEDIA_TYPE = "application/vnd.rill.batch";
const decoder = new TextDecoder();

/** A leader's answer, however it was read. */
export interface Answer {
  status: number;
  header: (name: string) => string | null;
  body: Uint8Array;
}

/** What a {@linkcode ReplicaFetcher} needs. */
export interface ReplicaFetcherOptions {
  /** the local replica */
  replica: Replica;
  /** this broker's id */
  brokerId: number;
  /** the leader's broker id */
  leaderId: number;
  /** the leader epoch being followed */
  leaderEpoch: number;
  /** copy only committed batches and never truncate (an observer) */
  observer: boolean;
  /** resolves a broker id to its URL (null when unknown) */
  leaderUrl: (id: number) => Promise<string | null>;
  /** the long-poll wait of each fetch */
  maxWaitMs: number;
  /** the most bytes per fetch */
  maxBytes: number;
  /** called when the leader says our metadata is stale */
  onStale: () => void;
  /** where to report */
  log: (line: string) => void;
  /** extra headers for requests to the leader (e.g. credentials) */
  headers?: () => Record<string, string>;
  /**
   * the leader's fetch session shared by all partitions this broker copies from it
   * (leader_fetcher.ts): one request per leader; absent, this fetcher polls on its own
   */
  shared?: LeaderFetcher;
  /**
   * the replication throttle while this replica is moving here (not in the ISR yet), else
   * null (replication_throttle.ts)
   */
  throttle?: () => ReplicationThrottle | null;
  /** told of the bytes of each fetch answer appended (for metrics) */
  onCopied?: (bytes: number) => void;
}

/**
 * Copies one partition from its leader until stopped.
 *
 * @example
 * ```ts
 * const f = new ReplicaFetcher({ replica, brokerId: 2, leaderId: 1, leaderEpoch: 3, observer: false,
 *   leaderUrl, maxWaitMs: 500, maxBytes: 1 << 20, onStale: () => {}, log: console.error });
 * f.start();
 * await f.stop();
 * ```
 */
export class ReplicaFetcher {
  readonly #o: ReplicaFetcherOptions;
  readonly #abort = new AbortController();
  #done: Promise<void> = Promise.resolve();
  #conn: LeaderConnection | null = null;
  #connOrigin = "";
  /** fetches answered since start (for tests and metrics) */
  fetches = 0;
  /** shared fetching: whether the log was checked against the leader under this epoch */
  #truncated: boolean;
  #failures = 0;
  /** shared fetching: no fetch before this time (backoff) */
  retryAt = 0;
  /** shared fetching: the append or error handling in progress */
  #busy: Promise<void> = Promise.resolve();

  /** @param opts the replica, the leader and the fetch settings */
  constructor(opts: ReplicaFetcherOptions) {
    this.#o = opts;
    this.#truncated = opts.observer;
  }

  /** The local replica. */
  get replica(): Replica {
    return this.#o.replica;
  }

  /** Whether it copies as an observer (committed batches only, no replica id). */
  get observer(): boolean {
    return this.#o.observer;
  }

  /** Whether it was stopped. */
  get stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  /** The leader epoch this fetcher follows. */
  get leaderEpoch(): number {
    return this.#o.leaderEpoch;
  }

  /** The leader's broker id. */
  get leaderId(): number {
    return this.#o.leaderId;
  }

  /** Starts the copy loop. */
  start(): void {
    if (this.#o.shared) {
      this.#o.shared.add(this);
      return;
    }
    this.#done = this.#run().catch((e) => {
      if (!this.#abort.signal.aborted) this.#o.log(`replica fetcher stopped: ${e}`);
    });
  }

  /**
   * Stops the loop and waits for an append in progress.
   *
   * @returns once stopped
   */
  async stop(): Promise<void> {
    this.#abort.abort();
    if (this.#o.shared) {
      this.#o.shared.remove(this);
      await this.#busy;
      return;
    }
    // Closing the connection ends a long poll in progress.
    this.#conn?.close();
    await this.#done;
    this.#conn?.close();
    this.#conn = null;
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const r = o.replica;
    const signal = this.#abort.signal;
    let url: string | null = null;
    let truncated = o.observer;
    let failures = 0;
    while (!signal.aborted && !r.closing) {
      try {
        url ??= await o.leaderUrl(o.leaderId);
        if (url === null) {
          await this.#sleep(200);
          continue;
        }
        if (!truncated) {
          await this.#truncate(url);
          truncated = true;
        }
        await this.#fetchOnce(url);
        failures = 0;
      } catch (e) {
        if (signal.aborted || r.closing) return;
        if (await this.#restartIfBehindLeaderStart(e)) {
          truncated = true;
          failures = 0;
          continue;
        }
        failures++;
        if (e instanceof RillError) {
          if (e.code === "OFFSET_OUT_OF_RANGE" && !o.observer) truncated = false;
          else if (e.code !== "BROKER_NOT_AVAILABLE") o.onStale();
          if (failures === 1 || failures % 50 === 0) {
            o.log(`fetching ${r.name} from broker ${o.leaderId}: ${e.code}: ${e.message}`);
          }
        } else if (failures === 1 || failures % 50 === 0) {
          o.log(`fetching ${r.name} from broker ${o.leaderId} failed: ${e}`);
        }
        url = null;
        await this.#sleep(Math.min(500, 50 * failures));
      }
    }
  }

  /**
   * Shared fetching, before this partition joins a request: checks the log against the
   * leader once per epoch (truncation), through the shared connection's `request`.
   *
   * @param url the leader's URL
   * @param request sends a GET to the leader
   * @returns false when the partition must sit this round out (it failed and backs off)
   */
  async prepare(url: string, request: (url: string) => Promise<Answer>): Promise<boolean> {
    if (this.#truncated) return true;
    try {
      await this.#truncate(url, request);
      this.#truncated = true;
      return true;
    } catch (e) {
      await this.#handle(e);
      return false;
    }
  }

  /**
   * Shared fetching: this partition's answer, appended before the next request.
   *
   * @param offset the fetch offset sent
   * @param bytes the batches (a view valid until the next request)
   * @param hw the leader's high watermark
   */
  apply(offset: number, bytes: Uint8Array, hw: number): Promise<void> {
    this.#busy = this.#append(offset, bytes, hw).then(() => {
      this.#failures = 0;
    }, (e) => this.#handle(e));
    return this.#busy;
  }

  /**
   * Shared fetching: this partition's error (from its answer, or its truncation): restart
   * behind the leader's log start, truncate again, or back off and look up the metadata.
   *
   * @param e the error
   */
  failed(e: unknown): Promise<void> {
    this.#busy = this.#handle(e);
    return this.#busy;
  }

  async #handle(e: unknown): Promise<void> {
    const o = this.#o;
    const r = o.replica;
    if (this.stopped || r.closing) return;
    if (await this.#restartIfBehindLeaderStart(e)) {
      this.#truncated = true;
      this.#failures = 0;
      return;
    }
    this.#failures++;
    if (e instanceof RillError) {
      if (e.code === "OFFSET_OUT_OF_RANGE" && !o.observer) this.#truncated = false;
      else if (e.code !== "BROKER_NOT_AVAILABLE") o.onStale();
      if (this.#failures === 1 || this.#failures % 50 === 0) {
        o.log(`fetching ${r.name} from broker ${o.leaderId}: ${e.code}: ${e.message}`);
      }
    } else if (this.#failures === 1 || this.#failures % 50 === 0) {
      o.log(`fetching ${r.name} from broker ${o.leaderId} failed: ${e}`);
    }
    this.retryAt = Date.now() + Math.min(500, 50 * this.#failures);
  }

  /**
   * One GET to the leader: over this fetcher's kept-alive connection for an `http:` leader
   * (replica_client.ts), through `fetch()` otherwise.
   *
   * @returns the status, a header getter and the body (valid until the next request)
   * @throws {RillError} BROKER_NOT_AVAILABLE when the leader cannot be reached, else the
   *   error the leader answered
   */
  async #request(url: string): Promise<Answer> {
    const headers = { Accept: BATCH_MEDIA_TYPE, ...this.#o.headers?.() };
    let answer: Answer;
    try {
      if (url.startsWith("http:")) {
        const origin = new URL(url).origin;
        if (this.#conn === null || this.#connOrigin !== origin) {
          this.#conn?.close();
          this.#conn = new LeaderConnection(origin);
          this.#connOrigin = origin;
        }
        const res = await this.#conn.get(url.slice(origin.length), headers);
        answer = { status: res.status, header: (n) => res.headers.get(n) ?? null, body: res.body };
      } else {
        const res = await fetch(url, { headers, signal: this.#abort.signal });
        const body = new Uint8Array(await res.arrayBuffer());
        answer = { status: res.status, header: (n) => res.headers.get(n), body };
      }
    } catch (e) {
      if (this.#abort.signal.aborted) throw e;
      throw new RillError("BROKER_NOT_AVAILABLE", `Cannot reach the leader: ${e}`);
    }
    if (answer.status < 200 || answer.status > 299) {
      let body: unknown = null;
      try {
        body = JSON.parse(decoder.decode(answer.body));
      } catch {
        // not JSON: the status decides
      }
      throw errorFromBody(answer.status, body);
    }
    return answer;
  }

  async #truncate(
    url: string,
    request: (url: string) => Promise<Answer> = (u) => this.#request(u),
  ): Promise<void> {
    const r = this.#o.replica;
    const leo = r.logEndOffset;
    const latest = r.log.latestEpoch();
    if (leo === r.logStartOffset) return;
    const res = await request(
      `${url}${partitionPath(r)}/epoch-end-offset?epoch=${latest}`,
    );
    const body = JSON.parse(decoder.decode(res.body)) as {
      epoch: number;
      endOffset: number;
      logEndOffset: number;
    };
    let target: number;
    if (body.epoch < 0) target = Math.min(leo, body.logEndOffset);
    else {
      const own = r.log.endOffsetForEpoch(body.epoch);
      target = own.epoch < 0 ? body.endOffset : Math.min(body.endOffset, own.endOffset);
    }
    target = Math.min(target, leo);
    if (target < leo) {
      this.#o.log(
        `truncating ${r.name} from ${leo} to ${target} (leader ${this.#o.leaderId}, epoch ${this.#o.leaderEpoch})`,
      );
      await r.truncateTo(target);
    }
  }

  /**
   * Kafka's handleOutOfRangeError for a replica behind the leader's log start: when the
   * leader answered OFFSET_OUT_OF_RANGE and its log start offset is above our log end
   * offset (its retention deleted what we lack), empty our log and restart it there.
   *
   * @returns true if the log was restarted (fetch again at once)
   */
  async #restartIfBehindLeaderStart(e: unknown): Promise<boolean> {
    if (!(e instanceof RillError) || e.code !== "OFFSET_OUT_OF_RANGE") return false;
    const r = this.#o.replica;
    const leaderStart = Number(e.details.logStartOffset);
    const leo = r.logEndOffset;
    if (!Number.isSafeInteger(leaderStart) || leaderStart <= leo) return false;
    this.#o.log(
      `restarting ${r.name} at the leader's log start offset ${leaderStart}: its log end offset ${leo} is below it (leader ${this.#o.leaderId}, epoch ${this.#o.leaderEpoch})`,
    );
    try {
      await r.truncateFullyAndStartAt(leaderStart);
    } catch (err) {
      if (this.#abort.signal.aborted || r.closing) return false;
      this.#o.log(`restarting ${r.name} at offset ${leaderStart} failed: ${err}`);
      return false;
    }
    return true;
  }

  async #fetchOnce(url: string): Promise<void> {
    const o = this.#o;
    const r = o.replica;
    const offset = r.logEndOffset;
    const throttle = o.throttle?.() ?? null;
    const maxBytes = throttle ? throttle.fetchBytes(o.maxBytes) : o.maxBytes;
    let q = `offset=${offset}&maxWaitMs=${o.maxWaitMs}&maxBytes=${maxBytes}`;
    if (!o.observer) {
      q += `&replicaId=${o.brokerId}&leaderEpoch=${o.leaderEpoch}`;
    }
    const res = await this.#request(`${url}${partitionPath(r)}/records?${q}`);
    // A view of the connection's buffer: appended (awaited) before the next request.
    await this.#append(offset, res.body, Number(res.header("rill-high-watermark")));
  }

  async #append(offset: number, bytes: Uint8Array, hw: number): Promise<void> {
    const r = this.#o.replica;
    const throttle = this.#o.throttle?.() ?? null;
    if (this.#abort.signal.aborted || r.closing) return;
    this.fetches++;
    // A fetch starts at the batch holding `offset`; skip a batch we already have.
    while (bytes.length > 0) {
      const h = readBatchHeader(bytes);
      if (h.baseOffset >= offset) break;
      bytes = bytes.subarray(LOG_OVERHEAD + h.batchLength);
    }
    // A compacted leader log has offset gaps; the follower's log takes contiguous batches.
    const contiguous = fillOffsetGaps(bytes, offset, r.log.latestEpoch());
    await r.appendAsFollower(contiguous, Number.isSafeInteger(hw) ? hw : 0);
    if (throttle && bytes.length > 0) {
      const wait = throttle.take(bytes.length);
      if (wait > 0) await this.#sleep(wait);
    }
    if (contiguous.length > 0) this.#o.onCopied?.(contiguous.length);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#abort.signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#abort.signal.addEventListener("abort", done, { once: true });
    });
  }
}

function partitionPath(r: Replica): string {
  return `/v1/topics/${encodeURIComponent(r.topic)}/partitions/${r.partition}`;
}
