/**
 * A lease in Deno KV: one holder at a time, taken and renewed with an atomic check on the
 * entry's versionstamp, so two brokers racing for it cannot both win. The controller holds
 * the lease at `["rill", "controller"]`; when its holder stops renewing, the lease expires
 * after `ttlMs` and another broker takes it, with a higher lease epoch.
 *
 * Stored value: `{ holder: <broker id>, expiresMs: <ms since the epoch>, epoch: <n> }`.
 *
 * @module
 */
import { kvRetry } from "./kv_retry.ts";
import { controllerKey } from "./kv_keys.ts";

/** A lease as stored in KV. */
export interface Lease {
  /** the broker id holding it */
  holder: number;
  /** when it expires unless renewed, ms since the epoch */
  expiresMs: number;
  /** bumped every time the lease changes hands */
  epoch: number;
}

/**
 * One named lease in KV.
 *
 * @example
 * ```ts
 * const lease = new LeaseStore(kv);
 * const mine = await lease.acquire(1, 6000); // the lease, or null if another broker holds it
 * ```
 */
export class LeaseStore {
  /**
   * @param kv the shared KV
   * @param key the lease's key (default: the controller lease)
   * @param now the clock (for tests)
   */
  constructor(
    readonly kv: Deno.Kv,
    readonly key: Deno.KvKey = controllerKey(),
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Takes the lease if it is free or expired, or renews it if `holder` holds it.
   *
   * @param holder the broker id asking
   * @param ttlMs how long the lease lasts from now
   * @returns the lease when `holder` holds it after the call, else null
   */
  async acquire(holder: number, ttlMs: number): Promise<Lease | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await this.kv.get<Lease>(this.key);
      const now = this.now();
      const cur = entry.value;
      if (cur !== null && cur.holder !== holder && cur.expiresMs > now) return null;
      const next: Lease = {
        holder,
        expiresMs: now + ttlMs,
        epoch: cur === null ? 1 : cur.holder === holder ? cur.epoch : cur.epoch + 1,
      };
      const res = await kvRetry(() => this.kv.atomic().check(entry).set(this.key, next).commit());
      if (res.ok) return next;
    }
    return null;
  }

  /**
   * The current lease, if unexpired.
   *
   * @returns the lease, or null when nobody holds it
   */
  async current(): Promise<Lease | null> {
    const v = (await this.kv.get<Lease>(this.key)).value;
    return v !== null && v.expiresMs > this.now() ? v : null;
  }

  /**
   * Gives the lease up (a graceful shutdown) if `holder` still holds it.
   *
   * @param holder the broker id
   */
  async release(holder: number): Promise<void> {
    const entry = await this.kv.get<Lease>(this.key);
    if (entry.value?.holder !== holder) return;
    await kvRetry(() =>
      this.kv.atomic().check(entry).set(this.key, { ...entry.value!, expiresMs: 0 }).commit()
    );
  }
}
