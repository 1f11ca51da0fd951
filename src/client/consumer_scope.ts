/**
 * Which consumer's own work is running now: its `run()` loop, the handlers it calls and
 * the rebalance listeners it calls. `disconnect()` asks this so that, called from there, it
 * does not wait for the loop that is waiting for it (a deadlock).
 *
 * It rests on `AsyncLocalStorage`, which follows a call across `await`s, found through
 * `process.getBuiltinModule("node:async_hooks")` (Deno, Node ≥ 20.16, Bun) rather than an
 * import, so the client still loads where there is none (browsers). There
 * {@linkcode consumerScopeOwner} always answers `undefined`.
 *
 * @module
 */

interface Storage {
  run<R>(store: object, fn: () => R): R;
  getStore(): object | undefined;
}

const storage: Storage | null = (() => {
  try {
    const proc = (globalThis as {
      process?: { getBuiltinModule?: (id: string) => unknown };
    }).process;
    const hooks = proc?.getBuiltinModule?.("node:async_hooks") as
      | { AsyncLocalStorage?: new () => Storage }
      | undefined;
    return hooks?.AsyncLocalStorage ? new hooks.AsyncLocalStorage() : null;
  } catch {
    // No Node compatibility layer: calls are not traced (see the module note).
    return null;
  }
})();

/**
 * Runs `fn` as `owner`'s work: everything it calls or starts, across `await`s, sees
 * `owner` from {@linkcode consumerScopeOwner}.
 *
 * @param owner the consumer
 * @param fn the work
 * @returns what `fn` returns
 * @example
 * ```ts
 * const loop = runAsConsumer(consumer, () => runLoop());
 * ```
 */
export function runAsConsumer<R>(owner: object, fn: () => R): R {
  return storage ? storage.run(owner, fn) : fn();
}

/**
 * The consumer whose work is running now.
 *
 * @returns the owner given to {@linkcode runAsConsumer}, or `undefined` outside of it (and
 *   always where the runtime has no `AsyncLocalStorage`)
 * @example
 * ```ts
 * if (consumerScopeOwner() === consumer) console.log("called from a handler");
 * ```
 */
export function consumerScopeOwner(): object | undefined {
  return storage?.getStore();
}
