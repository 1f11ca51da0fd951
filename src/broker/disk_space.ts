/**
 * What a broker does about disk space, so that a full disk cannot take cluster coordination
 * down with it (issue 14, D3):
 *
 * - a free-space floor ({@linkcode DiskFloor}, `rill broker --min-free-bytes`, default
 *   64 MiB): produce is refused with 500 `KAFKA_STORAGE_ERROR` (retriable) while the file
 *   system of the data directory or of the KV file has less free space than the floor, so
 *   the broker's own appends stop before the disk is exhausted and heartbeats, leases, offset
 *   commits and topic deletion keep the room they need (Kafka's log dirs go offline on an
 *   I/O error instead; the floor stops one step earlier);
 * - a reserve file next to the KV file ({@linkcode KvReserve}, `--kv-reserve-bytes`, default
 *   8 MiB): when a KV write fails because the disk is full anyway (another process filled
 *   it), the reserve is deleted and the write tried again (kv_retry.ts), so the delete of a
 *   topic that would free the space still goes through; the reserve is written again once
 *   there is room for it above the floor.
 *
 * Free space is read with `statvfs(3)` (libc through FFI, as malloc_tuning.ts); where that
 * is unavailable (not Linux, no FFI permission) the floor checks nothing.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { addDiskFullRelief, isDiskFullError as isDiskFull } from "../coordination/kv_retry.ts";

/** statvfs on 64-bit Linux (glibc and musl alike): 11 words and 6 ints. */
const STATVFS_SIZE = 112;
const F_FRSIZE = 8;
const F_BAVAIL = 32;

let statvfs: ((path: Uint8Array, buf: Uint8Array) => number) | null | undefined;

function loadStatvfs(): ((path: Uint8Array, buf: Uint8Array) => number) | null {
  if (statvfs !== undefined) return statvfs;
  statvfs = null;
  if (Deno.build.os !== "linux") return null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      const lib = Deno.dlopen(name, {
        statvfs: { parameters: ["buffer", "buffer"], result: "i32" },
      });
      const fn = lib.symbols.statvfs;
      statvfs = (path, buf) => fn(path, buf);
      break;
    } catch {
      // try the next name
    }
  }
  return statvfs;
}

const encoder = new TextEncoder();

/**
 * The bytes an unprivileged process may still write on the file system holding `path`
 * (`f_bavail × f_frsize`).
 *
 * @param path a file or directory
 * @returns the free bytes, or null when it cannot be known here
 * @example
 * ```ts
 * freeBytes("/var/lib/rill"); // 52613349376
 * ```
 */
export function freeBytes(path: string): number | null {
  const fn = loadStatvfs();
  if (fn === null) return null;
  const buf = new Uint8Array(STATVFS_SIZE);
  const cpath = encoder.encode(path + "\0");
  if (fn(cpath, buf) !== 0) return null;
  const view = new DataView(buf.buffer);
  return Number(view.getBigUint64(F_BAVAIL, true) * view.getBigUint64(F_FRSIZE, true));
}

/** Within this much above twice the floor, free space is read on every check. */
const NEAR_FLOOR_BYTES = 16 * 1024 * 1024;

/** The default free-space floor: 64 MiB. */
export const DEFAULT_MIN_FREE_BYTES = 64 * 1024 * 1024;

/**
 * Refuses produce while the disk of the data directory or the KV file is below a floor.
 * Free space is read at most every `refreshMs` while far above the floor (a `statvfs` costs
 * ~2 µs, but a produce path need not pay it on every request), and on every check near it.
 * Requests already past the check still append, so the floor should exceed what may be in
 * flight at once (the default 64 MiB is eight 8 MiB requests).
 *
 * @example
 * ```ts
 * const floor = new DiskFloor(["/var/lib/rill", "/var/lib/rill/meta.kv"], 64 << 20);
 * floor.check(); // throws KAFKA_STORAGE_ERROR below the floor
 * ```
 */
export class DiskFloor {
  #checkedAt = -Infinity;
  #free: number | null = null;

  /**
   * @param paths files or directories whose file systems must keep the floor free
   * @param minFreeBytes the floor (0 turns the check off)
   * @param refreshMs how long a reading of free space is reused
   */
  constructor(
    readonly paths: readonly string[],
    readonly minFreeBytes: number,
    readonly refreshMs = 250,
  ) {}

  /**
   * The least free space over the paths' file systems (cached for `refreshMs`).
   *
   * @param fresh read it now, not from the cache
   * @returns bytes, or null when unknown
   */
  free(fresh = false): number | null {
    const now = performance.now();
    if (fresh || now - this.#checkedAt >= this.refreshMs) {
      this.#checkedAt = now;
      let least: number | null = null;
      for (const p of this.paths) {
        const f = freeBytes(p);
        if (f !== null && (least === null || f < least)) least = f;
      }
      this.#free = least;
    }
    return this.#free;
  }

  /**
   * Throws when a file system is below the floor.
   *
   * @throws {RillError} KAFKA_STORAGE_ERROR (retriable) saying how much is free
   */
  check(): void {
    if (this.minFreeBytes <= 0) return;
    let free = this.free();
    if (free === null) return;
    // Near the floor, read it now: appends since the cached reading may have used the
    // margin, or deletes freed space.
    if (free < 2 * this.minFreeBytes + NEAR_FLOOR_BYTES) free = this.free(true);
    if (free === null || free >= this.minFreeBytes) return;
    throw new RillError(
      "KAFKA_STORAGE_ERROR",
      `The broker's disk has ${free} bytes free, below its floor of ${this.minFreeBytes} (--min-free-bytes): produce is refused until space is freed (delete topics, lower retention, or add disk)`,
      { freeBytes: free, minFreeBytes: this.minFreeBytes },
    );
  }
}

/**
 * A file of zeros kept next to the KV file, given up when a KV write fails on a full disk.
 *
 * @example
 * ```ts
 * const reserve = await KvReserve.create("/var/lib/rill/meta.kv.reserve-1", 8 << 20);
 * reserve.release(); // true: 8 MiB freed for the KV write to try again
 * ```
 */
export class KvReserve {
  #present = false;
  #writing: Promise<void> | null = null;

  private constructor(readonly path: string, readonly bytes: number) {}

  /**
   * Writes the reserve (real blocks, not a sparse file: the file system accounts for written
   * blocks when they are written, before they reach the disk) if there is room for it.
   *
   * @param path the reserve file
   * @param bytes its size
   * @returns the reserve (absent when it did not fit; {@linkcode maintain} writes it later)
   */
  static async create(path: string, bytes: number): Promise<KvReserve> {
    const reserve = new KvReserve(path, bytes);
    await reserve.#write();
    return reserve;
  }

  /** Whether the reserve file is on disk. */
  get present(): boolean {
    return this.#present;
  }

  async #write(): Promise<void> {
    if (this.bytes <= 0) return;
    try {
      const file = await Deno.open(this.path, { write: true, create: true, truncate: true });
      try {
        const zeros = new Uint8Array(Math.min(this.bytes, 1024 * 1024));
        for (let left = this.bytes; left > 0;) {
          const n = Math.min(left, zeros.length);
          let at = 0;
          while (at < n) at += await file.write(zeros.subarray(at, n));
          left -= n;
        }
      } finally {
        file.close();
      }
      this.#present = true;
    } catch (e) {
      // No room (or no such directory): no reserve for now.
      await Deno.remove(this.path).catch(() => {});
      if (!isDiskFull(e) && !(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /**
   * Deletes the reserve file, synchronously (a KV write is waiting to try again).
   *
   * @returns whether space was freed
   */
  release(): boolean {
    if (!this.#present) return false;
    this.#present = false;
    try {
      Deno.removeSync(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return true;
  }

  /**
   * Writes the reserve again when it was released and there is room for it above `floor`.
   *
   * @param free the free bytes now (null: unknown, do nothing)
   * @param floor the free-space floor to keep besides the reserve
   * @returns once done
   */
  async maintain(free: number | null, floor: number): Promise<void> {
    if (this.#present || this.bytes <= 0 || free === null) return;
    if (free < floor + this.bytes) return;
    this.#writing ??= this.#write().finally(() => this.#writing = null);
    await this.#writing;
  }
}

/**
 * A broker's floor and reserve together: {@linkcode check} before a produce,
 * {@linkcode maintain} now and then, {@linkcode close} on shutdown.
 *
 * @example
 * ```ts
 * const guard = await DiskGuard.open({ dataDir, kvPath, brokerId: 1, minFreeBytes, reserveBytes });
 * guard.check();
 * ```
 */
export class DiskGuard {
  readonly #removeRelief: () => void;

  private constructor(readonly floor: DiskFloor, readonly reserve: KvReserve | null) {
    const r = reserve;
    this.#removeRelief = r === null ? () => {} : addDiskFullRelief(() => r.release());
  }

  /**
   * Sets up the floor over the data directory and the KV file, and the reserve next to a
   * local KV file.
   *
   * @param opts the broker's paths and settings (`kvPath` undefined for a KV given as an
   *   object or a URL: then no reserve)
   * @returns the guard
   */
  static async open(opts: {
    dataDir: string;
    kvPath?: string;
    brokerId: number;
    minFreeBytes: number;
    reserveBytes: number;
  }): Promise<DiskGuard> {
    const paths = [opts.dataDir];
    if (opts.kvPath !== undefined) paths.push(dirOf(opts.kvPath));
    const reserve = opts.kvPath !== undefined && opts.reserveBytes > 0
      ? await KvReserve.create(`${opts.kvPath}.reserve-${opts.brokerId}`, opts.reserveBytes)
      : null;
    return new DiskGuard(new DiskFloor(paths, opts.minFreeBytes), reserve);
  }

  /**
   * Refuses a produce below the floor.
   *
   * @throws {RillError} KAFKA_STORAGE_ERROR
   */
  check(): void {
    this.floor.check();
  }

  /**
   * Writes the reserve again once there is room for it above the floor.
   *
   * @returns once done
   */
  async maintain(): Promise<void> {
    await this.reserve?.maintain(this.floor.free(), this.floor.minFreeBytes);
  }

  /** Stops offering the reserve to KV writes. */
  close(): void {
    this.#removeRelief();
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}
