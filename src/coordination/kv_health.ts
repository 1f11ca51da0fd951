/**
 * Whether the KV answers: {@linkcode watchKvHealth} wraps a `Deno.Kv` so that every call
 * (get, getMany, list pages, set, delete, atomic commits, sum/min/max helpers) is timed.
 *
 * A hosted KV (Deno Deploy's, a self-hosted `denokv`) is reached over the network. When it is
 * down, Deno's KV Connect client does not fail a call: it retries it every ~200 ms until the
 * KV answers. So an outage shows as calls that stay pending, not as errors: the KV counts
 * as unreachable once some call has been pending longer than `stallMs` (or the last one
 * failed), and reachable again when a call completes. The owner is told once per change
 * (`onChange`), never per call, and {@linkcode KvHealth.status} is what `/healthz` shows.
 *
 * Nothing here retries or times out a call: callers that must not wait (produce, fetch)
 * simply do not call the KV.
 *
 * @module
 */

/** What {@linkcode KvHealth.status} reports. */
export interface KvHealthStatus {
  /** false while a call has been pending longer than the stall bound, or the last failed */
  reachable: boolean;
  /** since when (ms since the epoch) the KV is unreachable, or null */
  unreachableSinceMs: number | null;
  /** the age of the oldest pending call in ms (0 when none) */
  oldestPendingMs: number;
  /** calls pending now */
  pending: number;
}

/** Options of {@linkcode watchKvHealth}. */
export interface KvHealthOptions {
  /** a call pending this long marks the KV unreachable; default 3000 ms */
  stallMs?: number;
  /** told once when the KV becomes unreachable, and once when it is back */
  onChange?: (status: KvHealthStatus) => void;
  /** the clock (ms since the epoch) */
  now?: () => number;
}

/** Health of one KV connection, fed by the wrapper of {@linkcode watchKvHealth}. */
export class KvHealth {
  readonly #pending = new Map<number, number>();
  #nextId = 0;
  #unreachableSince: number | null = null;
  #reachableSince: number;
  #timer: ReturnType<typeof setTimeout> | null = null;
  readonly #stallMs: number;
  readonly #onChange: (s: KvHealthStatus) => void;
  readonly #now: () => number;

  /** @param opts the stall bound, the change callback and the clock */
  constructor(opts: KvHealthOptions = {}) {
    this.#stallMs = opts.stallMs ?? 3000;
    this.#onChange = opts.onChange ?? (() => {});
    this.#now = opts.now ?? Date.now;
    this.#reachableSince = this.#now();
  }

  /**
   * How long the KV has answered without an outage (since this health began, or since the
   * last outage ended); 0 during an outage. After an outage, heartbeats stored in KV are stale
   * because nobody could write them: judge no one dead on them until this reaches a session
   * timeout.
   *
   * @returns ms
   */
  reachableForMs(): number {
    return this.#unreachableSince === null ? this.#now() - this.#reachableSince : 0;
  }

  /** The current state. */
  status(): KvHealthStatus {
    const now = this.#now();
    const oldest = Math.min(...this.#pending.values());
    return {
      reachable: this.#unreachableSince === null,
      unreachableSinceMs: this.#unreachableSince,
      oldestPendingMs: this.#pending.size === 0 ? 0 : now - oldest,
      pending: this.#pending.size,
    };
  }

  /**
   * Times one KV call.
   *
   * @param p the call's promise
   * @returns the same result
   */
  track<T>(p: Promise<T>): Promise<T> {
    const id = this.#nextId++;
    this.#pending.set(id, this.#now());
    this.#arm();
    return p.then(
      (v) => {
        this.#settle(id, true);
        return v;
      },
      (e) => {
        // A refused check or a bad argument is an answer; only transport failures count.
        this.#settle(id, !isTransportError(e));
        throw e;
      },
    );
  }

  /** Stops the stall timer (the KV is being closed). */
  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #settle(id: number, answered: boolean): void {
    this.#pending.delete(id);
    if (answered) {
      // The KV just answered: calls still pending are judged from now on.
      const now = this.#now();
      for (const k of this.#pending.keys()) this.#pending.set(k, now);
    }
    if (answered && this.#unreachableSince !== null) {
      this.#unreachableSince = null;
      this.#reachableSince = this.#now();
      this.#onChange(this.status());
    } else if (!answered && this.#unreachableSince === null) {
      this.#unreachableSince = this.#now();
      this.#onChange(this.status());
    }
    if (this.#pending.size === 0 && this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  /** Checks for a stalled call when the oldest pending one reaches the bound. */
  #arm(): void {
    if (this.#timer !== null || this.#pending.size === 0) return;
    const oldest = Math.min(...this.#pending.values());
    const wait = Math.max(0, oldest + this.#stallMs - this.#now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#pending.size === 0) return;
      const first = Math.min(...this.#pending.values());
      if (this.#now() - first >= this.#stallMs && this.#unreachableSince === null) {
        this.#unreachableSince = first;
        this.#onChange(this.status());
      }
      // Keep watching while calls stay pending (without logging again).
      if (this.#unreachableSince === null) this.#arm();
    }, wait);
    Deno.unrefTimer(this.#timer);
  }
}

function isTransportError(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /KV Connect|error sending request|connection|network|timed out/i.test(msg);
}

/**
 * Wraps a KV so that every call feeds `health`. The wrapper is a `Deno.Kv` for all callers.
 *
 * @param kv the KV
 * @param health where calls are timed
 * @returns the wrapped KV
 * @example
 * ```ts
 * const health = new KvHealth({ onChange: (s) => console.log(s.reachable) });
 * const kv = watchKvHealth(await Deno.openKv(":memory:"), health);
 * await kv.get(["a"]);
 * health.status().reachable; // true
 * ```
 */
export function watchKvHealth(kv: Deno.Kv, health: KvHealth): Deno.Kv {
  const wrapAtomic = (op: Deno.AtomicOperation): Deno.AtomicOperation => {
    const wrapped: Deno.AtomicOperation = new Proxy(op, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target);
        if (typeof v !== "function") return v;
        if (prop === "commit") return () => health.track(target.commit());
        // Builder methods return the operation itself: keep returning the wrapper.
        return (...args: unknown[]) => {
          const r = v.apply(target, args);
          return r === target ? wrapped : r;
        };
      },
    });
    return wrapped;
  };
  return new Proxy(kv, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      switch (prop) {
        case "get":
        case "getMany":
        case "set":
        case "delete":
          return (...args: unknown[]) =>
            health.track((v as (...a: unknown[]) => Promise<unknown>).apply(target, args));
        case "atomic":
          return () => wrapAtomic(target.atomic());
        case "list":
          return (...args: Parameters<Deno.Kv["list"]>) => {
            const it = target.list(...args);
            const next = it.next.bind(it);
            it.next = () => health.track(next());
            return it;
          };
        default:
          return v.bind(target);
      }
    },
  });
}
