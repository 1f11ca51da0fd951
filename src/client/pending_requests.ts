/**
 * The requests of a connection waiting for their answers, by request id (ids start at 1).
 *
 * A `Map` that a connection with one request at a time empties after every answer shrinks
 * its table on that delete and allocates a new one on the next set (V8 shrinks a Map whose
 * entries fall below a quarter of its capacity): ~130 bytes of garbage a request, 5.7% of a
 * one-producer client's allocations (heap-sampled). An entry under id 0, which no request
 * has, keeps it from ever emptying.
 *
 * The request set while no other waits (a producer awaiting each send: every request) is
 * kept in two fields instead, so that it costs no `Map` operation at all: its set, get and
 * delete were 1.7% of the client's CPU with 50 producers awaiting single sends (profiled,
 * `deno task bench clients`, RILL_CLIENTS_PARTS=many), mostly the table's rehash as deleted
 * entries filled it. That request is always the oldest (later ones go to the `Map` while it
 * waits), so the order of {@linkcode PendingRequests.entries} is kept.
 *
 * @module
 */

const SENTINEL = 0;

/** Pending requests by id (a positive integer). */
export class PendingRequests<V> {
  readonly #map = new Map<number, V | null>([[SENTINEL, null]]);
  /** the request set while none other waited (0: none), older than every one in #map */
  #oneId = SENTINEL;
  #one: V | undefined = undefined;

  /** How many are waiting. */
  get size(): number {
    return this.#map.size - (this.#oneId === SENTINEL ? 1 : 0);
  }

  /**
   * @param id the request id (above 0)
   * @returns its entry, or undefined
   */
  get(id: number): V | undefined {
    if (id === SENTINEL) return undefined;
    if (id === this.#oneId) return this.#one;
    return this.#map.get(id) ?? undefined;
  }

  /**
   * @param id the request id (above 0)
   * @param value its entry
   */
  set(id: number, value: V): void {
    if (id === this.#oneId) this.#one = value;
    else if (this.#oneId === SENTINEL && this.#map.size === 1) {
      this.#oneId = id;
      this.#one = value;
    } else this.#map.set(id, value);
  }

  /**
   * @param id the request id
   */
  delete(id: number): void {
    if (id === SENTINEL) return;
    if (id === this.#oneId) {
      this.#oneId = SENTINEL;
      this.#one = undefined;
    } else this.#map.delete(id);
  }

  /**
   * The entries, in the order they were set (the request timeout's sweep reads the oldest).
   *
   * @returns `[id, entry]` pairs
   */
  *entries(): IterableIterator<[number, V]> {
    if (this.#oneId !== SENTINEL) yield [this.#oneId, this.#one as V];
    for (const [id, v] of this.#map) if (v !== null) yield [id, v];
  }

  /**
   * Takes every entry out.
   *
   * @returns them, in the order they were set
   */
  takeAll(): V[] {
    const out: V[] = [];
    if (this.#oneId !== SENTINEL) out.push(this.#one as V);
    this.#oneId = SENTINEL;
    this.#one = undefined;
    for (const v of this.#map.values()) if (v !== null) out.push(v);
    this.#map.clear();
    this.#map.set(SENTINEL, null);
    return out;
  }
}
