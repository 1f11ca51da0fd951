/**
 * Every Deno KV call of a broker in one place: {@linkcode instrumentKv} wraps the KV so each
 * operation (get, get_many, list, set, delete, commit, watch, enqueue) reports its kind,
 * duration and outcome to an observer (the broker's metrics). KV is the cost that matters
 * on hosted KV, and the wrapper sees the calls of every store (topics, groups, offsets,
 * leases, auth) and of {@linkcode kvRetry}'s attempts alike, so a retried commit counts
 * once per attempt and its `database is locked` failures count as errors.
 *
 * The coordination layer knows nothing of metrics: the observer is a plain callback.
 *
 * @module
 */
import { isTransientKvError } from "./kv_retry.ts";

/** The kinds of KV operation reported. */
export type KvOpKind =
  | "get"
  | "get_many"
  | "list"
  | "set"
  | "delete"
  | "commit"
  | "watch"
  | "enqueue";

/** How a KV operation ended. */
export type KvOutcome = "ok" | "conflict" | "locked" | "error";

/** Receives one report per KV operation. */
export type KvObserver = (op: KvOpKind, seconds: number, outcome: KvOutcome) => void;

const KINDS: Record<string, KvOpKind> = {
  get: "get",
  getMany: "get_many",
  set: "set",
  delete: "delete",
  enqueue: "enqueue",
};

function failure(e: unknown): KvOutcome {
  return isTransientKvError(e) ? "locked" : "error";
}

async function timed<T>(
  observe: KvObserver,
  op: KvOpKind,
  run: () => Promise<T>,
  outcome: (v: T) => KvOutcome = () => "ok",
): Promise<T> {
  const start = performance.now();
  try {
    const v = await run();
    observe(op, (performance.now() - start) / 1000, outcome(v));
    return v;
  } catch (e) {
    observe(op, (performance.now() - start) / 1000, failure(e));
    throw e;
  }
}

function instrumentAtomic(atomic: Deno.AtomicOperation, observe: KvObserver): Deno.AtomicOperation {
  const proxy: Deno.AtomicOperation = new Proxy(atomic, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      if (prop === "commit") {
        return () =>
          timed(observe, "commit", () => target.commit(), (r) => r.ok ? "ok" : "conflict");
      }
      // check/set/delete/sum/… return the operation itself: keep returning the proxy.
      return (...args: unknown[]) => {
        const r = v.apply(target, args);
        return r === target ? proxy : r;
      };
    },
  });
  return proxy;
}

/**
 * Wraps a KV so that every operation is reported to `observe`.
 *
 * @param kv the KV (its owner still closes it: `close()` is passed through)
 * @param observe called once per operation with its kind, duration in seconds and outcome
 * @returns a KV that behaves as `kv`
 * @example
 * ```ts
 * const kv = instrumentKv(await Deno.openKv(":memory:"), (op, s, outcome) => console.log(op, s, outcome));
 * await kv.set(["k"], 1); // logs: set 0.0001 ok
 * ```
 */
export function instrumentKv(kv: Deno.Kv, observe: KvObserver): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      const kind = typeof prop === "string" ? KINDS[prop] : undefined;
      if (kind !== undefined) {
        return (...args: unknown[]) =>
          timed(
            observe,
            kind,
            () => (v as (...a: unknown[]) => Promise<unknown>).apply(target, args),
          );
      }
      if (prop === "atomic") {
        return () => instrumentAtomic(target.atomic(), observe);
      }
      if (prop === "list") {
        // One report per listing, when the iteration ends (or fails).
        return (...args: unknown[]) => {
          const iter = (v as (...a: unknown[]) => Deno.KvListIterator<unknown>).apply(target, args);
          const start = performance.now();
          let reported = false;
          const report = (outcome: KvOutcome) => {
            if (reported) return;
            reported = true;
            observe("list", (performance.now() - start) / 1000, outcome);
          };
          const next = iter.next.bind(iter);
          iter.next = async () => {
            try {
              const r = await next();
              if (r.done) report("ok");
              return r;
            } catch (e) {
              report(failure(e));
              throw e;
            }
          };
          return iter;
        };
      }
      if (prop === "watch") {
        return (...args: unknown[]) => {
          observe("watch", 0, "ok");
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return v.bind(target);
    },
  });
}
