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

/** A lease this process holds, with the versionstamp of its last write (its fence). */
export interface HeldLease extends Lease {
  /** the versionstamp of the lease entry as this holder last wrote it */
  versionstamp: string;
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
    const { held } = await this.tryAcquire(holder, ttlMs);
    return held === null
      ? null
      : { holder: held.holder, expiresMs: held.expiresMs, epoch: held.epoch };
  }

  /**
   * Takes, or renews, the lease; also says who holds it when `holder` does not, so that a
   * caller can leave the KV alone until that lease expires.
   *
   * With `known` (what this holder last wrote), a renewal is one checked write and no read;
   * when the check fails (the lease changed meanwhile), it reads and decides again.
   *
   * @param holder the broker id asking
   * @param ttlMs how long the lease lasts from now
   * @param known the lease this holder last wrote, if any
   * @returns `held`: the lease when `holder` holds it after the call; `current`: the lease
   *   as last read or written (null when none is stored)
   */
  async tryAcquire(
    holder: number,
    ttlMs: number,
    known?: HeldLease | null,
  ): Promise<{ held: HeldLease | null; current: Lease | null }> {
    if (known && known.holder === holder) {
      const next: Lease = { holder, expiresMs: this.now() + ttlMs, epoch: known.epoch };
      const res = await kvRetry(() =>
        this.kv.atomic().check({ key: this.key, versionstamp: known.versionstamp })
          .set(this.key, next).commit()
      );
      if (res.ok) {
        const held = { ...next, versionstamp: res.versionstamp };
        return { held, current: held };
      }
    }
    let current: Lease | null = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await this.kv.get<Lease>(this.key);
      const now = this.now();
      const cur = entry.value;
      current = cur;
      if (cur !== null && cur.holder !== holder && cur.expiresMs > now) {
        return { held: null, current: cur };
      }
      const next: Lease = {
        holder,
        expiresMs: now + ttlMs,
        epoch: cur === null ? 1 : cur.holder === holder ? cur.epoch : cur.epoch + 1,
      };
      const res = await kvRetry(() => this.kv.atomic().check(entry).set(this.key, next).commit());
      if (res.ok) {
        const held = { ...next, versionstamp: res.versionstamp };
        return { held, current: held };
      }
    }
    return { held: null, current };
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
