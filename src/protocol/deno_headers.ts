/**
 * Deno's `Headers` internals, read where the public methods cost more than the work needs
 * (the broker's HTTP record lane, the client's produce answers). Deno 2.9.6 keeps a
 * `Headers`' `[name, value]` pairs in an own field named by a symbol described "header list"
 * (ext/fetch/20_headers.js), null on a Deno.serve request until first used, and such a
 * request's server-side source under "header target". Both are private: every reader falls
 * back to the public API when they are missing, as on other runtimes or a later Deno.
 *
 * @module
 */

/** The symbols of the two fields, looked up on the first `Headers` seen; null when absent. */
let keys: { list: symbol | null; target: symbol | null } | undefined;

function keysOf(headers: Headers): { list: symbol | null; target: symbol | null } {
  if (keys === undefined) {
    const symbols = Object.getOwnPropertySymbols(headers);
    keys = {
      list: symbols.find((s) => s.description === "header list") ?? null,
      target: symbols.find((s) => s.description === "header target") ?? null,
    };
  }
  return keys;
}

/**
 * The header list a Deno `Headers` holds now: `[name, value]` pairs as received or set.
 *
 * @param headers the headers
 * @returns the list, or null when the runtime keeps none or has not made it yet
 */
export function heldHeaderList(headers: Headers): unknown[] | null {
  const key = keysOf(headers).list;
  if (key === null) return null;
  const list = (headers as unknown as Record<symbol, unknown>)[key];
  return Array.isArray(list) ? list : null;
}

/**
 * The header pairs of a Deno.serve request whose `Headers` have not made their list yet,
 * taken from the server's request itself (its `headerList`), leaving the `Headers` as they
 * were.
 *
 * @param headers the request's headers
 * @returns the pairs, or null when there is no such source (a Request made in code, a closed
 *   request, another runtime)
 */
export function servedHeaderList(headers: Headers): unknown[] | null {
  const key = keysOf(headers).target;
  if (key === null) return null;
  const target = (headers as unknown as Record<symbol, unknown>)[key];
  if (typeof target !== "object" || target === null || !("headerList" in target)) return null;
  try {
    const list = (target as { headerList: unknown }).headerList;
    return Array.isArray(list) ? list : null;
  } catch {
    return null; // a closed request
  }
}
