/**
 * The client's request timeout (`RillConfig.requestTimeoutMs`, Kafka's `request.timeout.ms`)
 * without a timer or a clock read per request (a timer and an AbortController per HTTP
 * request were ~12% of the client's JavaScript time in a --cpu-prof profile of sequential
 * sends): one sweep per process, every eighth of the shortest timeout, looks at the oldest
 * unanswered requests of each WebSocket connection and of each transport's HTTP requests.
 * Each marks, at each sweep, the id its next request will get; a request with a lower id was
 * sent before that mark, so once the mark is older than the request's allowance (the
 * timeout, plus the `maxWaitMs` of a long poll, which the broker holds on purpose) the
 * request is overdue. It is never declared overdue early, and at most two sweeps late. A
 * WebSocket connection with an overdue request is done for (as Kafka's client disconnects
 * on a request timeout): its owner fails every request on it. HTTP requests to one broker
 * share an abort signal, aborted when one of them is overdue (the others wait on the same
 * broker), and replaced for the requests that follow.
 *
 * @module
 */

import { PendingRequests } from "./pending_requests.ts";

/** What the sweep asks of a connection. */
export interface Swept {
  /**
   * Called at each sweep.
   *
   * @param now `performance.now()`
   */
  sweep(now: number): void;
}

const swept = new Set<Swept>();
let timer: ReturnType<typeof setInterval> | undefined;
let period = Infinity;

function restart(): void {
  if (timer !== undefined) clearInterval(timer);
  timer = setInterval(() => {
    const now = performance.now();
    for (const s of swept) s.sweep(now);
  }, period);
  // The sweep alone does not keep a process alive (a request waiting does, by its socket).
  const t = timer as unknown as { unref?: () => void };
  if (typeof t.unref === "function") t.unref();
  else {
    const d = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;
    d?.unrefTimer?.(timer as unknown as number);
  }
}

/**
 * Sweeps `s` from now on, at least every eighth of `timeoutMs`.
 *
 * @param s the connection
 * @param timeoutMs its request timeout
 */
export function sweepEvery(s: Swept, timeoutMs: number): void {
  swept.add(s);
  const want = Math.max(10, Math.floor(timeoutMs / 8));
  if (want < period || timer === undefined) {
    period = Math.min(period, want);
    restart();
  }
}

/**
 * Stops sweeping `s`; the sweep stops once no connection is left.
 *
 * @param s the connection
 */
export function stopSweeping(s: Swept): void {
  if (!swept.delete(s) || swept.size > 0) return;
  clearInterval(timer);
  timer = undefined;
  period = Infinity;
}

/** A request as the sweep sees it: `wait`, the long poll's `maxWaitMs` (absent: 0). */
export interface Waiting {
  readonly wait?: number;
}

/**
 * The sweep marks of one connection: which requests were sent before which sweep.
 *
 * @example
 * ```ts
 * const marks = new SendMarks(30_000);
 * if (marks.overdue(nextId, performance.now(), pending)) conn.fail();
 * ```
 */
export class SendMarks {
  /** `id, time` pairs, oldest first: requests with a lower id were sent before `time` */
  readonly #marks: number[] = [];
  readonly #timeoutMs: number;

  /** @param timeoutMs the request timeout */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Takes this sweep's mark and tells whether a request has waited past its allowance.
   *
   * @param nextId the id the connection's next request will get
   * @param now `performance.now()`
   * @param pending the unanswered requests by id, in the order sent
   * @returns an overdue one, if any
   */
  overdue<T extends Waiting>(
    nextId: number,
    now: number,
    pending: { readonly size: number; entries(): Iterable<[number, T]> },
  ): T | undefined {
    const m = this.#marks;
    if (pending.size === 0) {
      m.length = 0;
      m.push(nextId, now);
      return undefined;
    }
    if (m.length === 0 || m[m.length - 2] !== nextId) m.push(nextId, now);
    let oldest = -1;
    for (const [id, p] of pending.entries()) {
      if (oldest < 0) oldest = id;
      const wait = p.wait ?? 0;
      // The first mark taken after the request was sent.
      let i = 0;
      while (i < m.length && m[i] <= id) i += 2;
      if (i < m.length && m[i + 1] <= now - this.#timeoutMs - wait) return p;
      // Requests sent later, without a longer wait, are not overdue either.
      if (wait === 0) break;
    }
    let drop = 0;
    while (drop + 2 < m.length && m[drop] <= oldest) drop += 2;
    if (drop > 0) m.splice(0, drop);
    return undefined;
  }
}

/** An HTTP request in flight. */
interface InFlight extends Waiting {
  readonly wait: number;
  readonly base: string;
  /** what its signal comes from */
  readonly abort: AbortController;
}

/**
 * The request timeout of a transport's HTTP requests.
 *
 * @example
 * ```ts
 * const timeouts = new HttpTimeouts(40_000);
 * const id = timeouts.begin(base, 0);
 * try {
 *   await fetch(url, { signal: timeouts.signal(id) });
 * } finally {
 *   timeouts.end(id);
 * }
 * ```
 */
export class HttpTimeouts implements Swept {
  readonly #timeoutMs: number;
  readonly #marks: SendMarks;
  readonly #pending = new PendingRequests<InFlight>();
  #nextId = 1;
  #swept = false;
  /** per broker, the signal its requests carry */
  readonly #aborts = new Map<string, AbortController>();
  #lastSignal: AbortSignal | undefined;

  /** @param timeoutMs the request timeout */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#marks = new SendMarks(timeoutMs);
  }

  /**
   * A request to `base` starts.
   *
   * @param base the broker's base URL
   * @param wait the time a long poll may be held (0 for other requests)
   * @returns its id, for {@linkcode end}
   */
  begin(base: string, wait: number): number {
    const id = this.#nextId++;
    let abort = this.#aborts.get(base);
    if (abort === undefined) {
      abort = new AbortController();
      this.#aborts.set(base, abort);
    }
    this.#pending.set(id, { wait, base, abort });
    this.#lastSignal = abort.signal;
    if (!this.#swept) {
      this.#swept = true;
      sweepEvery(this, this.#timeoutMs);
    }
    return id;
  }

  /**
   * The signal a request carries: aborted once it, or another request to its broker sent
   * with the same signal, is overdue.
   *
   * @param id what {@linkcode begin} returned
   * @returns the signal
   */
  signal(id: number): AbortSignal {
    return this.#pending.get(id)!.abort.signal;
  }

  /**
   * The signal of the request {@linkcode begin} started last ({@linkcode signal} of its
   * id, without looking it up).
   */
  get lastSignal(): AbortSignal {
    return this.#lastSignal!;
  }

  /**
   * A request has its answer's head, or failed.
   *
   * @param id what {@linkcode begin} returned
   */
  end(id: number): void {
    this.#pending.delete(id);
  }

  /** @inheritdoc */
  sweep(now: number): void {
    if (this.#pending.size === 0) {
      // Nothing in flight: off the sweep until the next request.
      this.#swept = false;
      stopSweeping(this);
      return;
    }
    const late = this.#marks.overdue(this.#nextId, now, this.#pending);
    if (late === undefined) return;
    late.abort.abort();
    if (this.#aborts.get(late.base) === late.abort) this.#aborts.delete(late.base);
    // Those aborted are done with (even if a fetch that ignores its signal never settles):
    // the requests that follow carry a new signal, which no later sweep aborts for them.
    for (const [id, p] of this.#pending.entries()) {
      if (p.abort.signal.aborted) this.#pending.delete(id);
    }
  }
}
