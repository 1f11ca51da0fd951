/**
 * A KV Connect endpoint for tests and benches: what `Deno.openKv("http://…")` talks to when
 * it reaches a hosted Deno KV (Deno Deploy's, or a self-hosted `denokv`), implemented on a
 * local `Deno.openKv()` file so that brokers can coordinate "remotely" on one machine.
 *
 * Protocol (denokv's `proto/kv-connect.md`): the client POSTs its access token to the
 * endpoint's URL for the metadata exchange (JSON), gets back the data path URL and a token,
 * then POSTs protobuf bodies to `<data>/snapshot_read`, `<data>/atomic_write` and
 * `<data>/watch` (a stream of length-prefixed `WatchOutput` messages). Versions 1-3 are
 * spoken; queues (`Enqueue`) and versionstamped-key mutations are refused with a 400.
 *
 * Knobs a hosted KV has and a local file does not:
 * - {@linkcode KvConnectEndpoint.setLatency}: every request waits `fixed ± jitter` ms first;
 * - {@linkcode KvConnectEndpoint.setFailureRate}: that share of requests answer 503 before
 *   doing anything (Deno's client retries them every ~200 ms, as it does a real outage);
 * - {@linkcode KvConnectEndpoint.startOutage} / {@linkcode KvConnectEndpoint.endOutage}:
 *   everything answers 503 and open watches are cut;
 * - {@linkcode KvConnectEndpoint.startWriteOutage} / {@linkcode KvConnectEndpoint.endWriteOutage}:
 *   writes answer 503, reads and watches go on;
 * - {@linkcode KvConnectEndpoint.usage}: requests and units counted per access token (so per
 *   broker when each has its own token) and per key family (a key's first two parts).
 *
 * Units follow Deno Deploy's billing: a read unit per 4 KiB read (at least one per range
 * read or watched key), a write unit per 1 KiB written (at least one per mutation); an
 * atomic check is a read unit.
 *
 * One request at a time touches the local KV (a queue), so a read of several ranges is one
 * consistent snapshot and the failed checks reported for a refused write are the ones that
 * refused it.
 *
 * @module
 */

import { Deserializer, Serializer } from "node:v8";
import { compareBytes, packKey, unpackKey, unpackKeyPrefix } from "./kv_connect/key_codec.ts";
import {
  type AtomicWriteIn,
  decode,
  encode,
  type KvEntryOut,
  Messages,
  MutationType,
  type ReadRange,
  ReadStatus,
  ValueEncoding,
  WriteStatus,
} from "./kv_connect/datapath.ts";

/** Options of {@linkcode KvConnectEndpoint.start}. */
export interface KvConnectEndpointOptions {
  /** the local KV file the endpoint serves (default: a new temp file, removed on close) */
  path?: string;
  /** the access tokens it accepts (default `["rill-test-token"]`) */
  tokens?: string[];
  /** added latency per request in ms (default 0) */
  latencyMs?: number;
  /** ± this much random latency in ms (default 0) */
  jitterMs?: number;
  /** share of requests answered 503 (default 0) */
  failureRate?: number;
}

/** What was spent, in requests and Deno Deploy billing units. */
export interface KvUsage {
  /** `snapshot_read` requests */
  readRequests: number;
  /** ranges read (a `get` is one, a `getMany` of n keys is n) */
  ranges: number;
  /** read units: 4 KiB each, at least one per range, watched key or check */
  readUnits: number;
  /** `atomic_write` requests (successful or refused by a check) */
  writeRequests: number;
  /** write units: 1 KiB each, at least one per mutation */
  writeUnits: number;
  /** `atomic_write` requests refused by a check */
  checkFailures: number;
  /** `watch` requests opened, and messages sent on them */
  watchRequests: number;
  watchMessages: number;
  /** metadata exchanges (not billed) */
  metadataExchanges: number;
  /** requests answered 503 by an outage or the failure rate */
  refused: number;
}

/** Usage counted since the last reset. */
export interface KvUsageReport {
  /** seconds since the last reset */
  seconds: number;
  /** all requests */
  total: KvUsage;
  /** per access token */
  byToken: Record<string, KvUsage>;
  /** per key family (a key's first two parts, `rill/groups`; `(other)` when not strings) */
  byFamily: Record<string, KvUsage>;
}

function emptyUsage(): KvUsage {
  return {
    readRequests: 0,
    ranges: 0,
    readUnits: 0,
    writeRequests: 0,
    writeUnits: 0,
    checkFailures: 0,
    watchRequests: 0,
    watchMessages: 0,
    metadataExchanges: 0,
    refused: 0,
  };
}

/** A request the endpoint refuses with a 4xx: `status` and a one-sentence message. */
class ClientError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const READ_UNIT = 4096;
const WRITE_UNIT = 1024;
const SUPPORTED_VERSIONS = [1, 2, 3];

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Encodes a value read from the local KV the way Deno's KV sends it. */
function encodeValue(value: unknown): { value: Uint8Array; encoding: number } {
  if (value instanceof Uint8Array) return { value, encoding: ValueEncoding.BYTES };
  if (value instanceof Deno.KvU64) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, value.value, true);
    return { value: out, encoding: ValueEncoding.LE64 };
  }
  // V8's own wire format (typed arrays as array buffer views, not Node's host objects).
  const s = new Serializer();
  s.writeHeader();
  s.writeValue(value);
  return { value: new Uint8Array(s.releaseBuffer()), encoding: ValueEncoding.V8 };
}

/** Decodes a value sent by a client into what the local KV stores. */
function decodeValue(data: Uint8Array, encoding: number): unknown {
  switch (encoding) {
    case ValueEncoding.BYTES:
      return data;
    case ValueEncoding.LE64: {
      if (data.length !== 8) throw new ClientError(400, "An LE64 value must be 8 bytes long.");
      return new Deno.KvU64(new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true));
    }
    case ValueEncoding.V8: {
      try {
        const d = new Deserializer(data);
        d.readHeader();
        return d.readValue();
      } catch (e) {
        throw new ClientError(400, `A V8-encoded value could not be decoded: ${e}`);
      }
    }
    default:
      throw new ClientError(400, `Unknown value encoding ${encoding}.`);
  }
}

/** A key's family: its first two parts when they are strings (`rill/groups`), else `(other)`. */
function familyOf(parts: Deno.KvKeyPart[]): string {
  const head = parts.slice(0, 2);
  if (head.length === 0 || !head.every((p) => typeof p === "string")) return "(other)";
  return head.join("/");
}

/** A KV Connect server over a local KV file, with latency, failure and outage knobs. */
export class KvConnectEndpoint implements AsyncDisposable {
  /** the URL to give `Deno.openKv()` / `--kv` */
  readonly url: string;
  readonly #server: Deno.HttpServer;
  #kv: Deno.Kv;
  readonly #path: string;
  readonly #ownPath: string | null;
  readonly #tokens: Set<string>;
  readonly #dataTokens = new Map<string, string>();
  readonly #databaseId = crypto.randomUUID();
  #latencyMs: number;
  #jitterMs: number;
  #failureRate: number;
  #outage = false;
  #writeOutage = false;
  #outageWaiters: (() => void)[] = [];
  /** how to cut each open watch */
  readonly #watches = new Set<() => void>();
  #queue: Promise<unknown> = Promise.resolve();
  #since = performance.now();
  #total = emptyUsage();
  #byToken = new Map<string, KvUsage>();
  #byFamily = new Map<string, KvUsage>();

  private constructor(
    server: Deno.HttpServer,
    kv: Deno.Kv,
    path: string,
    ownPath: string | null,
    opts: KvConnectEndpointOptions,
  ) {
    this.#server = server;
    this.#kv = kv;
    this.#path = path;
    this.#ownPath = ownPath;
    this.#tokens = new Set(opts.tokens ?? ["rill-test-token"]);
    this.#latencyMs = opts.latencyMs ?? 0;
    this.#jitterMs = opts.jitterMs ?? 0;
    this.#failureRate = opts.failureRate ?? 0;
    const addr = server.addr as Deno.NetAddr;
    this.url = `http://127.0.0.1:${addr.port}`;
  }

  /**
   * Starts an endpoint on 127.0.0.1, port 0.
   *
   * @param opts the local file, accepted tokens and knobs
   * @returns the running endpoint
   */
  static async start(opts: KvConnectEndpointOptions = {}): Promise<KvConnectEndpoint> {
    let ownPath: string | null = null;
    let path = opts.path;
    if (path === undefined) {
      ownPath = await Deno.makeTempDir({ prefix: "rill-kvconnect-" });
      path = `${ownPath}/kv.sqlite`;
    }
    const kv = await Deno.openKv(path);
    let self: KvConnectEndpoint | null = null;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => self!.#handle(req),
    );
    self = new KvConnectEndpoint(server, kv, path, ownPath, opts);
    return self;
  }

  /**
   * Sets the added latency of every request.
   *
   * @param fixedMs the base delay
   * @param jitterMs each request waits `fixedMs` plus a uniform draw in `[-jitterMs, jitterMs]`
   */
  setLatency(fixedMs: number, jitterMs = 0): void {
    this.#latencyMs = fixedMs;
    this.#jitterMs = jitterMs;
  }

  /**
   * Sets the share of requests answered 503 before they do anything.
   *
   * @param rate between 0 and 1
   */
  setFailureRate(rate: number): void {
    this.#failureRate = rate;
  }

  /** Starts a full outage: every request answers 503 and open watches are cut. */
  startOutage(): void {
    this.#outage = true;
    for (const cut of [...this.#watches]) cut();
  }

  /** Ends the outage. */
  endOutage(): void {
    this.#outage = false;
    for (const w of this.#outageWaiters.splice(0)) w();
  }

  /**
   * Starts refusing writes only (every `atomic_write` answers 503; reads and watches go on),
   * as a hosted KV that can still serve reads but not commit.
   */
  startWriteOutage(): void {
    this.#writeOutage = true;
  }

  /** Ends the write outage. */
  endWriteOutage(): void {
    this.#writeOutage = false;
  }

  /** Whether an outage is under way. */
  get inOutage(): boolean {
    return this.#outage;
  }

  /** Usage since the last {@linkcode resetUsage} (or the start). */
  usage(): KvUsageReport {
    return {
      seconds: (performance.now() - this.#since) / 1000,
      total: { ...this.#total },
      byToken: Object.fromEntries([...this.#byToken].map(([k, v]) => [k, { ...v }])),
      byFamily: Object.fromEntries([...this.#byFamily].map(([k, v]) => [k, { ...v }])),
    };
  }

  /** Sets every counter back to zero and restarts the clock of {@linkcode usage}. */
  resetUsage(): void {
    this.#since = performance.now();
    this.#total = emptyUsage();
    this.#byToken.clear();
    this.#byFamily.clear();
  }

  /**
   * Restarts the database behind the endpoint (closes and reopens its local file), as a
   * hosted KV's server restarting; Deno KV drops the values whose expiry has passed when it
   * opens a file. Open watches are cut.
   */
  async restart(): Promise<void> {
    await this.#exclusive(async () => {
      for (const cut of [...this.#watches]) cut();
      this.#kv.close();
      this.#kv = await Deno.openKv(this.#path);
    });
  }

  /** Stops serving and closes the local KV (removing it when the endpoint made it). */
  async close(): Promise<void> {
    this.startOutage();
    await this.#server.shutdown();
    await this.#queue.catch(() => {});
    this.#kv.close();
    if (this.#ownPath) await Deno.remove(this.#ownPath, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #count(token: string | null, family: string | null, field: keyof KvUsage, n = 1): void {
    this.#total[field] += n;
    if (token !== null) {
      let u = this.#byToken.get(token);
      if (!u) this.#byToken.set(token, u = emptyUsage());
      u[field] += n;
    }
    if (family !== null) {
      let u = this.#byFamily.get(family);
      if (!u) this.#byFamily.set(family, u = emptyUsage());
      u[field] += n;
    }
  }

  /** Runs `op` alone on the local KV. */
  #exclusive<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #delay(): Promise<void> {
    const ms = this.#latencyMs + (Math.random() * 2 - 1) * this.#jitterMs;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }

  async #handle(req: Request): Promise<Response> {
    await this.#delay();
    const url = new URL(req.url);
    const auth = req.headers.get("authorization") ?? "";
    const bearer = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    const token = this.#tokens.has(bearer) ? bearer : this.#dataTokens.get(bearer) ?? null;
    // Deno's client gives up at once when the metadata exchange of openKv() fails, and
    // retries data path calls: random failures hit the data path only.
    const dataPath = url.pathname !== "/" && url.pathname !== "";
    const refused = this.#outage || (dataPath && Math.random() < this.#failureRate) ||
      (this.#writeOutage && url.pathname.endsWith("/atomic_write"));
    if (refused) {
      this.#count(token, null, "refused");
      await req.body?.cancel();
      return new Response(
        this.#outage ? "The KV endpoint is in an outage." : "The KV endpoint failed this request.",
        { status: 503 },
      );
    }
    if (req.method !== "POST") {
      return new Response(`${req.method} is not allowed: KV Connect uses POST.`, { status: 405 });
    }
    try {
      if (url.pathname === "/" || url.pathname === "") return await this.#metadata(req, bearer);
      const m = /^\/data\/(snapshot_read|atomic_write|watch)$/.exec(url.pathname);
      if (!m) throw new ClientError(404, `No KV Connect route at ${url.pathname}.`);
      const owner = this.#dataTokens.get(bearer);
      if (owner === undefined) {
        throw new ClientError(401, "The data path token is missing or unknown.");
      }
      const version = Number(req.headers.get("x-denokv-version") ?? "1");
      const dbId = version >= 2
        ? req.headers.get("x-denokv-database-id")
        : req.headers.get("x-transaction-domain-id");
      if (dbId !== this.#databaseId) {
        throw new ClientError(400, `Unknown database id ${JSON.stringify(dbId)}.`);
      }
      const body = new Uint8Array(await req.arrayBuffer());
      if (m[1] === "snapshot_read") return await this.#snapshotRead(body, owner);
      if (m[1] === "atomic_write") return await this.#atomicWrite(body, owner);
      return this.#watch(body, owner);
    } catch (e) {
      if (e instanceof ClientError) return new Response(e.message, { status: e.status });
      return new Response(`The KV endpoint failed: ${e instanceof Error ? e.message : e}`, {
        status: 500,
      });
    }
  }

  async #metadata(req: Request, bearer: string): Promise<Response> {
    if (!this.#tokens.has(bearer)) {
      throw new ClientError(401, "The access token is missing or not valid for this database.");
    }
    const text = await req.text();
    let versions = [1];
    if (text.trim() !== "") {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new ClientError(400, "The metadata exchange body is not JSON.");
      }
      const sv = (body as { supportedVersions?: unknown })?.supportedVersions;
      if (!Array.isArray(sv) || !sv.every((v) => typeof v === "number")) {
        throw new ClientError(400, "supportedVersions must be an array of numbers.");
      }
      versions = sv;
    }
    const version = Math.max(...versions.filter((v) => SUPPORTED_VERSIONS.includes(v)));
    if (!Number.isFinite(version)) {
      throw new ClientError(400, `No protocol version in common: this endpoint speaks 1-3.`);
    }
    this.#count(bearer, null, "metadataExchanges");
    const dataToken = `dp-${crypto.randomUUID()}`;
    this.#dataTokens.set(dataToken, bearer);
    const common = {
      endpoints: [{ url: `${new URL(req.url).origin}/data`, consistency: "strong" }],
      token: dataToken,
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    };
    const meta = version === 1
      ? { version, uuid: this.#databaseId, ...common }
      : { version, databaseId: this.#databaseId, ...common };
    return Response.json(meta);
  }

  async #snapshotRead(body: Uint8Array, token: string): Promise<Response> {
    let ranges: ReadRange[];
    try {
      ranges = decode<{ ranges: ReadRange[] }>(Messages.SnapshotRead, body).ranges;
    } catch (e) {
      throw new ClientError(400, `The body is not a SnapshotRead: ${e}`);
    }
    const outputs = await this.#exclusive(() => Promise.all(ranges.map((r) => this.#readRange(r))));
    this.#count(token, null, "readRequests");
    ranges.forEach((r, i) => {
      const family = familyOf(unpackKeyPrefix(r.start).parts);
      const bytes = outputs[i].reduce((n, e) => n + e.key.length + e.value.length, 0);
      this.#count(token, family, "ranges");
      this.#count(token, family, "readUnits", Math.max(1, Math.ceil(bytes / READ_UNIT)));
    });
    return this.#protobuf(
      encode(Messages.SnapshotReadOutput, {
        ranges: outputs.map((values) => ({ values })),
        read_disabled: false,
        read_is_strongly_consistent: true,
        status: ReadStatus.SUCCESS,
      }),
    );
  }

  /**
   * Reads one range `[start, end)` of raw key bytes from the local KV: lists the longest key
   * prefix both bounds share (and that key itself), starting at a bound that is a whole key
   * when there is one, and keeps the keys whose bytes fall in the range.
   */
  async #readRange(range: ReadRange): Promise<KvEntryOut[]> {
    const { start, end, reverse } = range;
    const limit = range.limit > 0 ? range.limit : Infinity;
    if (compareBytes(start, end) >= 0) return [];
    const a = unpackKeyPrefix(start).parts;
    const b = unpackKeyPrefix(end).parts;
    let common = 0;
    while (common < a.length && common < b.length && samePart(a[common], b[common])) common++;
    const prefix = a.slice(0, common);
    const out: KvEntryOut[] = [];
    const inRange = (key: Uint8Array) =>
      compareBytes(key, start) >= 0 && compareBytes(key, end) < 0;
    const take = (e: Deno.KvEntryMaybe<unknown>) => {
      if (e.versionstamp === null) return;
      const key = packKey(e.key);
      if (!inRange(key)) return;
      out.push({
        key,
        ...encodeValue(e.value),
        versionstamp: hexToBytes(e.versionstamp),
      });
    };
    // The prefix key itself sorts before all its children.
    const self = prefix.length > 0 ? await this.#kv.get(prefix) : null;
    if (self && !reverse) take(self);
    // A bound that is a whole key deeper than the prefix narrows the listing.
    const startKey = unpackKeyPrefix(start);
    const endKey = unpackKeyPrefix(end);
    const lower = startKey.parts.length > common ? startKey.parts : null;
    const upper = endKey.parts.length > common && endKey.length === end.length
      ? endKey.parts
      : null;
    const selector: Deno.KvListSelector = lower && upper
      ? { start: lower, end: upper }
      : lower
      ? { prefix, start: lower }
      : upper
      ? { prefix, end: upper }
      : { prefix };
    for await (const e of this.#kv.list(selector, { reverse, batchSize: 500 })) {
      if (out.length >= limit) break;
      const key = packKey(e.key);
      if (!reverse && compareBytes(key, end) >= 0) break;
      if (reverse && compareBytes(key, start) < 0) break;
      take(e);
    }
    if (self && reverse && out.length < limit) take(self);
    return out.slice(0, Number.isFinite(limit) ? limit : undefined);
  }

  async #atomicWrite(body: Uint8Array, token: string): Promise<Response> {
    let write: AtomicWriteIn;
    try {
      write = decode<AtomicWriteIn>(Messages.AtomicWrite, body);
    } catch (e) {
      throw new ClientError(400, `The body is not an AtomicWrite: ${e}`);
    }
    if (write.enqueues.length > 0) {
      throw new ClientError(400, "Queues (enqueue) are not served by this endpoint.");
    }
    const checks = write.checks.map((c) => ({
      key: unpackKey(c.key),
      versionstamp: c.versionstamp.length === 0 ? null : bytesToHex(c.versionstamp),
    }));
    const steps: ((op: Deno.AtomicOperation) => void)[] = [];
    for (const m of write.mutations) {
      let key: Deno.KvKey;
      try {
        key = unpackKey(m.key);
      } catch (e) {
        throw new ClientError(400, `A mutation's key is not a key: ${(e as Error).message}`);
      }
      const expireAt = Number(m.expire_at_ms);
      switch (m.mutation_type) {
        case MutationType.SET: {
          const value = decodeValue(m.value?.data ?? new Uint8Array(), m.value?.encoding ?? 0);
          steps.push((op) =>
            op.set(
              key,
              value,
              expireAt > 0 ? { expireIn: Math.max(1, expireAt - Date.now()) } : {},
            )
          );
          break;
        }
        case MutationType.DELETE:
          steps.push((op) => op.delete(key));
          break;
        case MutationType.SUM:
        case MutationType.MIN:
        case MutationType.MAX: {
          if (m.value?.encoding !== ValueEncoding.LE64) {
            throw new ClientError(400, "sum, min and max take LE64 (Deno.KvU64) values here.");
          }
          const n = (decodeValue(m.value.data, ValueEncoding.LE64) as Deno.KvU64).value;
          const type = m.mutation_type;
          steps.push((op) => {
            if (type === MutationType.SUM) op.sum(key, n);
            else if (type === MutationType.MIN) op.min(key, n);
            else op.max(key, n);
          });
          break;
        }
        default:
          throw new ClientError(400, `Mutation type ${m.mutation_type} is not served here.`);
      }
    }
    const result = await this.#exclusive(async () => {
      const op = this.#kv.atomic();
      for (const c of checks) op.check(c);
      for (const step of steps) step(op);
      let r: Deno.KvCommitResult | Deno.KvCommitError;
      try {
        r = await op.commit();
      } catch (e) {
        // The local KV refused the mutation itself (e.g. sum on a non-U64 value).
        throw new ClientError(400, `The write was refused: ${(e as Error).message}`);
      }
      if (r.ok) return { ok: true as const, versionstamp: r.versionstamp };
      const now = checks.length > 0 ? await this.#kv.getMany(checks.map((c) => c.key)) : [];
      const failed = checks.flatMap((c, i) => now[i].versionstamp === c.versionstamp ? [] : [i]);
      return { ok: false as const, failed };
    });
    this.#count(token, null, "writeRequests");
    for (const c of write.checks) {
      this.#count(token, familyOf(unpackKeyPrefix(c.key).parts), "readUnits");
    }
    for (const m of result.ok ? write.mutations : []) {
      const size = m.key.length + (m.value?.data.length ?? 0);
      this.#count(
        token,
        familyOf(unpackKeyPrefix(m.key).parts),
        "writeUnits",
        Math.max(1, Math.ceil(size / WRITE_UNIT)),
      );
    }
    if (!result.ok) {
      this.#count(token, null, "checkFailures");
      return this.#protobuf(encode(Messages.AtomicWriteOutput, {
        status: WriteStatus.CHECK_FAILURE,
        failed_checks: result.failed,
      }));
    }
    return this.#protobuf(encode(Messages.AtomicWriteOutput, {
      status: WriteStatus.SUCCESS,
      versionstamp: hexToBytes(result.versionstamp),
    }));
  }

  #watch(body: Uint8Array, token: string): Response {
    let keys: Deno.KvKey[];
    try {
      const w = decode<{ keys: { key: Uint8Array }[] }>(Messages.Watch, body);
      keys = w.keys.map((k) => unpackKey(k.key));
    } catch (e) {
      throw new ClientError(400, `The body is not a Watch of whole keys: ${e}`);
    }
    this.#count(token, null, "watchRequests");
    const kv = this.#kv;
    const count = (n: number) => {
      this.#count(token, null, "watchMessages");
      for (const k of keys) this.#count(token, familyOf(k as Deno.KvKeyPart[]), "readUnits", n);
    };
    const source = kv.watch(keys);
    const watches = this.#watches;
    let cut = () => {};
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        cut = () => {
          watches.delete(cut);
          source.cancel().catch(() => {});
          try {
            controller.close();
          } catch {
            // Already closed.
          }
        };
        watches.add(cut);
        (async () => {
          try {
            for await (const entries of source) {
              // As denokv's own server does: every key of every message is "changed",
              // carrying its current entry (none when the key is absent).
              const message = encode(Messages.WatchOutput, {
                status: ReadStatus.SUCCESS,
                keys: entries.map((e) =>
                  e.versionstamp === null ? { changed: true } : {
                    changed: true,
                    entry_if_changed: {
                      key: packKey(e.key),
                      ...encodeValue(e.value),
                      versionstamp: hexToBytes(e.versionstamp),
                    },
                  }
                ),
              });
              const frame = new Uint8Array(4 + message.length);
              new DataView(frame.buffer).setUint32(0, message.length, true);
              frame.set(message, 4);
              count(1);
              controller.enqueue(frame);
            }
          } catch {
            // The stream was cut (outage or client gone).
          }
        })();
      },
      cancel() {
        cut();
      },
    });
    return new Response(stream, { headers: { "content-type": "application/octet-stream" } });
  }

  #protobuf(bytes: Uint8Array): Response {
    return new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": "application/x-protobuf" },
    });
  }
}

/**
 * Opens a remote KV with an access token. Deno reads the token from the process-wide
 * `DENO_KV_ACCESS_TOKEN` when a KV is opened, and test files run in parallel in one process:
 * the variable is set and read under a file lock, so two openings cannot mix tokens.
 *
 * @param url the endpoint's URL
 * @param token the access token
 * @returns the KV
 */
export async function openRemoteKv(url: string, token: string): Promise<Deno.Kv> {
  const lock = await Deno.open(`${Deno.env.get("TMPDIR") ?? "/tmp"}/rill-kv-token.lock`, {
    create: true,
    write: true,
  });
  try {
    await lock.lock(true);
    Deno.env.set("DENO_KV_ACCESS_TOKEN", token);
    return await Deno.openKv(url);
  } finally {
    lock.close();
  }
}

function samePart(a: Deno.KvKeyPart, b: Deno.KvKeyPart): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return compareBytes(a, b) === 0;
  return a === b || (typeof a === "number" && typeof b === "number" && Object.is(a, b));
}
