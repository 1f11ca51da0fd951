/**
 * The request timeout of the client's WebSocket connections (`RillConfig.requestTimeoutMs`,
 * Kafka's `request.timeout.ms`) without a timer or a clock read per request: one sweep per
 * process, every eighth of the shortest timeout, looks at each connection's oldest
 * unanswered requests. A connection marks, at each sweep, the id its next request will get;
 * a request with a lower id was sent before that mark, so once the mark is older than the
 * request's allowance (the timeout, plus the `maxWaitMs` of a long poll, which the broker
 * holds on purpose) the request is overdue. It is never declared overdue early, and at most
 * two sweeps late. A connection with an overdue request is done for (as Kafka's client
 * disconnects on a request timeout): its owner fails every request on it.
 *
 * @module
 */

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
   * @param pending the unanswered requests by id, in the order sent (a Map keeps it)
   * @returns true when one of them is overdue
   */
  overdue(nextId: number, now: number, pending: ReadonlyMap<number, Waiting>): boolean {
    const m = this.#marks;
    if (pending.size === 0) {
      m.length = 0;
      m.push(nextId, now);
      return false;
    }
    if (m.length === 0 || m[m.length - 2] !== nextId) m.push(nextId, now);
    let oldest = -1;
    for (const [id, p] of pending) {
      if (oldest < 0) oldest = id;
      const wait = p.wait ?? 0;
      // The first mark taken after the request was sent.
      let i = 0;
      while (i < m.length && m[i] <= id) i += 2;
      if (i < m.length && m[i + 1] <= now - this.#timeoutMs - wait) return true;
      // Requests sent later, without a longer wait, are not overdue either.
      if (wait === 0) break;
    }
    let drop = 0;
    while (drop + 2 < m.length && m[drop] <= oldest) drop += 2;
    if (drop > 0) m.splice(0, drop);
    return false;
  }
}
